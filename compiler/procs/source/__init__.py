from compiler.procs.source.process import FrameSource

__all__ = ["FrameSource"]
