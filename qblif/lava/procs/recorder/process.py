"""Recorder: a sink that writes every step's input to a memory-mapped file.

Lava 0.10 reads a Var back one element per message, so fetching a RingBuffer
sink of a conv layer (neurons x steps values) takes minutes; the Recorder's
model writes row ``t - 1`` of an int32 ``np.memmap`` of shape ``(steps, size)``
at ``path`` instead, which the host reads at memory speed after the run.
"""
from __future__ import annotations

import numpy as np
from lava.magma.core.process.ports.ports import InPort
from lava.magma.core.process.process import AbstractProcess


class Recorder(AbstractProcess):
    """Records ``a_in`` (shape ``(size,)``) for ``steps`` timesteps into ``path``.

    The host creates the file first (:func:`create_recording`) and reads it with
    :func:`read_recording` after the run.
    """

    def __init__(self, *, size: int, steps: int, path: str, name=None):
        super().__init__(size=int(size), steps=int(steps), path=str(path), name=name)
        self.a_in = InPort(shape=(int(size),))


def create_recording(path: str, size: int, steps: int) -> None:
    """Create the zero-filled int32 file of shape ``(steps, size)`` a Recorder writes to."""
    np.memmap(path, dtype=np.int32, mode="w+", shape=(int(steps), int(size))).flush()


def read_recording(path: str, size: int, steps: int) -> np.ndarray:
    """The recorded values, int32 ``(steps, size)`` (a copy: the file may be deleted)."""
    return np.array(np.memmap(path, dtype=np.int32, mode="r", shape=(int(steps), int(size))))
