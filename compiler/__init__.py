"""Deprecated alias of :mod:`qblif` (one release): ``compiler.X`` is the new module."""
import qblif
from qblif import legacy

legacy.install("compiler")


def __getattr__(name):
    return getattr(qblif, name)
