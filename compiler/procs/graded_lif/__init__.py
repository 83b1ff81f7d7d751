from compiler.procs.graded_lif.process import GradedLIF

__all__ = ["GradedLIF"]
