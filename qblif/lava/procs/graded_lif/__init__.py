from qblif.lava.procs.graded_lif.process import GradedLIF

__all__ = ["GradedLIF"]
