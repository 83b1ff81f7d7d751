"""Drive a Lava process model in this process, without a runtime (for tests and benchmarks).

The stand-in ports copy Lava's ``VEC_DENSE`` port semantics: an InPort returns
``zeros(shape, its dtype) + channel data`` (``PyInPortVectorDense.recv``), a channel stores
into an array of the sender's dtype (``CspSendPort.send``); Vars are cast to the model's
``LavaPyType`` as Lava's ``PyProcessBuilder`` casts them.
"""
from __future__ import annotations

import numpy as np


class StandInPort:
    """In: ``queue`` of arrays, each delivered through a channel of dtype ``channel``.
    Out: ``sent`` list of the arrays as the receiving channel stores them."""

    def __init__(self, shape, dtype, channel=None):
        self.shape, self.dtype, self.channel = tuple(shape), dtype, channel
        self.queue, self.sent = [], []

    def recv(self) -> np.ndarray:
        data = np.empty(self.shape, self.channel)
        data[:] = self.queue.pop(0)
        return np.zeros(self.shape, self.dtype) + data

    def send(self, data) -> None:
        buf = np.empty(self.shape, self.dtype)
        buf[:] = data
        self.sent.append(buf)


def build_model(model_cls, proc, channel=np.int32, ports=("s_in", "a_out")) -> object:
    """Instantiate ``model_cls`` for the Lava process ``proc`` with stand-in ``ports``
    (input, output), the input fed through a channel of dtype ``channel``."""
    pm = model_cls(proc.proc_params)
    for var in proc.vars:
        lt = getattr(model_cls, var.name)
        if issubclass(lt.cls, np.ndarray):
            value = np.empty(var.shape, lt.d_type)
            value[:] = var.init
        else:
            value = var.init
        setattr(pm, var.name, value)
    inp, out = ports
    setattr(pm, inp, StandInPort(getattr(proc, inp).shape, getattr(model_cls, inp).d_type,
                                 channel))
    setattr(pm, out, StandInPort(getattr(proc, out).shape, getattr(model_cls, out).d_type))
    pm.time_step = 0
    return pm


def drive(pm, inputs, ports=("s_in", "a_out")) -> np.ndarray:
    """Run ``pm.run_spk()`` once per input (time steps 1, 2, ...); return the sent arrays."""
    inp, out = (getattr(pm, p) for p in ports)
    for x in inputs:
        pm.time_step += 1
        inp.queue.append(x)
        pm.run_spk()
    return np.stack(out.sent)
