"""Deprecated alias of :mod:`qblif` (one release): ``qblif_lava.X`` is the new module."""
import qblif
from qblif import legacy

legacy.install("qblif_lava")


def __getattr__(name):
    return getattr(qblif, name)
