"""DelayLine: per-neuron axonal delays on a synapse's output (a layer's synaptic input), or on
a recurrent layer's spikes (lava-dl's output delay)."""
from __future__ import annotations

import numpy as np
from lava.magma.core.process.ports.ports import InPort, OutPort
from lava.magma.core.process.process import AbstractProcess
from lava.magma.core.process.variable import Var


class DelayLine(AbstractProcess):
    """``a_out`` at step t holds, for each neuron i, the ``a_in`` it received at step
    ``t - delays[i]`` (0 before the first; delay 0 passes through in the same step).

    delays: ints of ``shape`` (Lava order), 0..62; values are int32 synaptic sums or counts.
    reset_interval, reset_offset: with an interval >= 1, the line forgets what it holds
    before every timestep t with ``t % interval == offset % interval`` (a per-sample reset,
    as its layer's neuron: nothing of the previous sample arrives late); 0: never.
    drop_on_reset: also drop what arrives on such a step (a gate on a recurrent layer's
    feedback: its spikes of the previous sample's last step do not reach the new sample).
    """

    def __init__(self, *, delays: np.ndarray, reset_interval: int = 0, reset_offset: int = 0,
                 drop_on_reset: bool = False, name=None):
        delays = np.asarray(delays, np.int32)
        depth = int(delays.max()) + 1
        super().__init__(depth=depth, name=name)
        self.delays = Var(shape=delays.shape, init=delays)
        self.buffer = Var(shape=(depth,) + delays.shape, init=np.zeros((depth,) + delays.shape,
                                                                       np.int32))
        self.reset_interval = Var(shape=(1,), init=int(reset_interval))
        self.reset_offset = Var(shape=(1,), init=int(reset_offset))
        self.drop_on_reset = Var(shape=(1,), init=int(bool(drop_on_reset)))
        self.a_in = InPort(shape=delays.shape)
        self.a_out = OutPort(shape=delays.shape)
