"""GradedLIF: a CUBA (LIF) neuron that sends graded spikes (lava-dl ``gradedSpike``)."""
from __future__ import annotations

import numpy as np
from lava.magma.core.process.ports.ports import InPort, OutPort
from lava.magma.core.process.process import AbstractProcess
from lava.magma.core.process.variable import Var


class GradedLIF(AbstractProcess):
    """Lava LIF arithmetic (``qblif.core.reference``, K = 1, reset to zero), but a spike
    carries the voltage: ``v >> 6`` (the voltage in weight units; lava-dl's graded spike is
    the voltage, and the receiving Dense divides by 2^6 with its exponent), 0 otherwise.

    du, dv: Lava LIF decays; vth, bias_mant: ints or arrays of ``shape`` (Lava order);
    bias_exp: int; reset_interval / reset_offset as :class:`qblif.lava.procs.qblif.QBLIF`.
    """

    def __init__(self, *, shape, du: int, dv: int, vth, bias_mant=0, bias_exp: int = 0,
                 reset_interval=None, reset_offset: int = 0, name=None):
        shape = tuple(shape)
        super().__init__(shape=shape, du=int(du), dv=int(dv), bias_exp=int(bias_exp),
                         reset_interval=reset_interval, reset_offset=int(reset_offset),
                         name=name)
        full = lambda x: np.broadcast_to(np.asarray(x, np.int32), shape).copy()  # noqa: E731
        self.vth = Var(shape=shape, init=full(vth))
        self.bias_mant = Var(shape=shape, init=full(bias_mant))
        self.u = Var(shape=shape, init=np.zeros(shape, np.int32))
        self.v = Var(shape=shape, init=np.zeros(shape, np.int32))
        self.a_in = InPort(shape=shape)
        self.s_out = OutPort(shape=shape)
