from qblif.lava.procs.source.process import FrameSource

__all__ = ["FrameSource"]
