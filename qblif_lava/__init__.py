"""qblif-lava: QB-LIF burst neurons for Lava (process + Loihi fixed-point model),
lava-dl SLAYER training (``qblif_lava.slayer``, imports torch) and a NetX compiler
(the ``compiler`` package).

The semantics are in :mod:`qblif_lava.reference`; ``QBLIF`` is the Lava process. It is
imported on first use, so SLAYER training (``qblif_lava.slayer``, ``qblif_lava.training``)
needs only torch and lava-dl's SLAYER, not lava-nc (e.g. on a GPU machine).
"""
__all__ = ["QBLIF"]
__version__ = "0.1.0"


def __getattr__(name):
    if name == "QBLIF":
        from qblif_lava.process import QBLIF
        return QBLIF
    raise AttributeError(f"module 'qblif_lava' has no attribute {name!r}")
