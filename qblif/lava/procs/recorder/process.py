"""Recorder: a sink that writes every step's input to a memory-mapped file.

Lava 0.10 reads a Var back one element per message, so fetching a RingBuffer
sink of a conv layer (neurons x steps values) takes minutes; the Recorder's
model writes row ``t - 1`` of an int32 ``np.memmap`` of shape ``(steps, size)``
at ``path`` instead, which the host reads at memory speed after the run.
"""
from __future__ import annotations

import numpy as np
from lava.magma.core.process.ports.ports import InPort, RefPort
from lava.magma.core.process.process import AbstractProcess


class Recorder(AbstractProcess):
    """Records ``a_in`` (shape ``(size,)``) for ``steps`` timesteps into ``path``.

    The host creates the file first (:func:`create_recording`) and reads it with
    :func:`read_recording` after the run.
    """

    def __init__(self, *, size: int, steps: int, path: str, name=None):
        super().__init__(size=int(size), steps=int(steps), path=str(path), name=name)
        self.a_in = InPort(shape=(int(size),))


MAX_STATE_VARS = 3     # u, v; or an SDNN's sigma, act, residue


class StateRecorder(AbstractProcess):
    """Records Vars of a neuron process (u and v; sigma, act, residue) after every timestep
    into one file each.

    Lava's ``Monitor`` reads a Var through a ``RefPort`` once per step (cheap) but keeps the
    series in a Var of its own, which the host then fetches one element per message (minutes
    for a conv layer); this model writes row ``t - 1`` of each int32 ``np.memmap`` ``(steps,
    size)`` instead (``paths``, created by :func:`create_recording`), read back at memory
    speed. ``shape``: the Vars' shape (all the same); ``size = prod(shape)``.
    """

    def __init__(self, *, shape: tuple, steps: int, paths: tuple, name=None):
        shape = tuple(int(s) for s in shape)
        super().__init__(shape=shape, steps=int(steps), paths=tuple(map(str, paths)),
                         name=name)
        if not 1 <= len(paths) <= MAX_STATE_VARS:
            raise ValueError(f"{len(paths)} paths: a StateRecorder records 1 to "
                             f"{MAX_STATE_VARS} Vars")
        self.ref_0 = RefPort(shape=shape)     # Lava's models declare their ports statically
        self.ref_1 = RefPort(shape=shape)
        self.ref_2 = RefPort(shape=shape)

    def probe(self, *variables) -> None:
        """Connect the Vars to record (one per path), in ``paths`` order."""
        if len(variables) != len(self.proc_params["paths"]):
            raise ValueError(f"{len(variables)} Vars for {len(self.proc_params['paths'])} paths")
        for k, var in enumerate(variables):
            getattr(self, f"ref_{k}").connect_var(var)


def open_rows(paths, steps: int, size: int) -> list:
    """The ``(steps, size)`` int32 memmaps at ``paths`` (created by :func:`create_recording`),
    opened for writing by a process model."""
    return [np.memmap(p, dtype=np.int32, mode="r+", shape=(int(steps), int(size)))
            for p in paths]


def create_recording(path: str, size: int, steps: int) -> None:
    """Create the zero-filled int32 file of shape ``(steps, size)`` a Recorder writes to."""
    np.memmap(path, dtype=np.int32, mode="w+", shape=(int(steps), int(size))).flush()


def read_recording(path: str, size: int, steps: int) -> np.ndarray:
    """The recorded values, int32 ``(steps, size)`` (a copy: the file may be deleted)."""
    return np.array(np.memmap(path, dtype=np.int32, mode="r", shape=(int(steps), int(size))))
