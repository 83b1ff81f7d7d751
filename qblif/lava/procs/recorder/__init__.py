from qblif.lava.procs.recorder.process import Recorder

__all__ = ["Recorder"]
