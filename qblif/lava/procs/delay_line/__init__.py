from qblif.lava.procs.delay_line.process import DelayLine

__all__ = ["DelayLine"]
