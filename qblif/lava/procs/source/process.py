"""FrameSource: streams integer frames, one sample every ``steps`` timesteps."""
from __future__ import annotations

import numpy as np
from lava.magma.core.process.ports.ports import OutPort
from lava.magma.core.process.process import AbstractProcess
from lava.magma.core.process.variable import Var

from qblif.schedule import frame_at  # noqa: F401  (re-exported for the models)


def lane_shape(shape, lanes: int) -> tuple:
    """Shape of ``shape`` values sent on ``lanes`` thermometer lanes (last axis x lanes)."""
    return tuple(shape[:-1]) + (shape[-1] * lanes,)


class FrameSource(AbstractProcess):
    """Sends ``frames[s]`` on timesteps ``s*steps + 1 .. s*steps + steps`` (zeros after the last).

    frames: ints ``(samples, *shape)`` in Lava order (``(W, H, C)`` or ``(N,)``); with
    ``stream=True`` ``(samples, T_in, *shape)``, one value per step (:func:`frame_at`).
    lanes: 1 sends the value itself (a graded event); M > 1 sends M one-bit lanes in
    thermometer code, lane j = (x > j), interleaved on the last axis (index ``c*M + j``).
    Port ``s_out`` of shape ``lane_shape(shape, lanes)``, int32.
    """

    def __init__(self, *, frames: np.ndarray, steps: int, lanes: int = 1, stream: bool = False,
                 name=None):
        frames = np.asarray(frames, np.int32)
        shape = frames.shape[2 if stream else 1:]
        super().__init__(steps=int(steps), lanes=int(lanes), stream=bool(stream), name=name)
        self.frames = Var(shape=frames.shape, init=frames)
        self.s_out = OutPort(shape=lane_shape(shape, int(lanes)))
