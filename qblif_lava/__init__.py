"""qblif-lava: QB-LIF burst neurons for Lava (process + Loihi fixed-point model),
lava-dl SLAYER training (``qblif_lava.slayer``, imports torch) and a NetX compiler
(the ``compiler`` package).

The semantics are in :mod:`qblif_lava.reference`; ``QBLIF`` is the Lava process.
"""
from qblif_lava.process import QBLIF

__all__ = ["QBLIF"]
__version__ = "0.1.0"
