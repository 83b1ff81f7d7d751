"""The QB-LIF Lava process and its CPU process models (one package, as Lava's
model discovery expects: it imports every module next to the process)."""
from qblif.lava.procs.qblif.process import QBLIF

__all__ = ["QBLIF"]
