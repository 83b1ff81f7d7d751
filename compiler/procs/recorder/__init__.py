from compiler.procs.recorder.process import Recorder

__all__ = ["Recorder"]
