"""BiasNeuron: an input layer's CUBA (LIF) neuron driven by its bias, one frame per sample."""
from __future__ import annotations

import numpy as np
from lava.magma.core.process.ports.ports import OutPort
from lava.magma.core.process.process import AbstractProcess
from lava.magma.core.process.variable import Var


class BiasNeuron(AbstractProcess):
    """A CUBA neuron population (Lava LIF arithmetic, ``qblif.core.reference`` with K = 1 and
    reset to zero) with no synaptic input, whose ``bias_mant`` on timestep t is
    ``frame_at(frames, t, steps, stream)`` (:mod:`qblif.lava.procs.source`) and ``bias_exp``
    = 6: how stock NetX drives an input layer with a neuron (``bias_mant.init = image``),
    with a new frame per sample.

    frames: ints ``(S, *shape)`` (``stream``: ``(S, T_in, *shape)``), Lava order; du, dv: Lava
    LIF decays; vth: int or per-neuron array (Lava order); reset_interval / reset_offset:
    u, v zeroed before the step t with ``t % interval == offset % interval`` (None: never).
    Vars ``u``, ``v`` (int32, ``shape``); port ``s_out`` (0/1 spikes).
    """

    def __init__(self, *, frames: np.ndarray, steps: int, du: int, dv: int, vth,
                 stream: bool = False, reset_interval=None, reset_offset: int = 0, name=None):
        frames = np.asarray(frames, np.int32)
        shape = frames.shape[2 if stream else 1:]
        super().__init__(steps=int(steps), stream=bool(stream), du=int(du), dv=int(dv),
                         reset_interval=reset_interval, reset_offset=int(reset_offset),
                         name=name)
        self.frames = Var(shape=frames.shape, init=frames)
        self.vth = Var(shape=shape, init=np.broadcast_to(np.asarray(vth, np.int32), shape).copy())
        self.u = Var(shape=shape, init=np.zeros(shape, np.int32))
        self.v = Var(shape=shape, init=np.zeros(shape, np.int32))
        self.s_out = OutPort(shape=shape)
