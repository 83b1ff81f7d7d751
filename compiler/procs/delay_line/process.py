"""DelayLine: per-neuron axonal delays on a synapse's output (conv layers)."""
from __future__ import annotations

import numpy as np
from lava.magma.core.process.ports.ports import InPort, OutPort
from lava.magma.core.process.process import AbstractProcess
from lava.magma.core.process.variable import Var


class DelayLine(AbstractProcess):
    """``a_out`` at step t holds, for each neuron i, the ``a_in`` it received at step
    ``t - delays[i]`` (0 before the first; delay 0 passes through in the same step).

    delays: ints of ``shape`` (Lava order), 0..62; values are int32 synaptic sums.
    """

    def __init__(self, *, delays: np.ndarray, name=None):
        delays = np.asarray(delays, np.int32)
        depth = int(delays.max()) + 1
        super().__init__(depth=depth, name=name)
        self.delays = Var(shape=delays.shape, init=delays)
        self.buffer = Var(shape=(depth,) + delays.shape, init=np.zeros((depth,) + delays.shape,
                                                                       np.int32))
        self.a_in = InPort(shape=delays.shape)
        self.a_out = OutPort(shape=delays.shape)
