from compiler.procs.delay_line.process import DelayLine

__all__ = ["DelayLine"]
