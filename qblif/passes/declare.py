"""The pass declaration decorator (its own module so the passes can import it)."""
from __future__ import annotations


def declare(reads=(), writes=()):
    """Mark a pass with the names it reads and writes (``graph.*``, ``layer.*``, ``edge.*``)."""
    def wrap(fn):
        fn.reads, fn.writes = tuple(reads), tuple(writes)
        return fn
    return wrap
