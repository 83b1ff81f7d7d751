"""CPU process models of :class:`QBLIF`.

``fixed_pt`` / ``bit_accurate_loihi``: Loihi integer semantics. The current and
voltage update is Lava's own ``AbstractPyLifModelFixed.subthr_dynamics`` (24-bit
wrap of u, clip of v, decays in 1/4096); the burst and reset are
:mod:`qblif_lava.reference`. No torch may be imported here (Lava forks).

``floating_pt``: spec section 2, with the same integer parameters read in real
units: decays ``(du + 1) / 4096`` and ``dv / 4096``, states in weight units
(the fixed-point state divided by 64), threshold ``vth``.
"""
import numpy as np
from lava.magma.core.decorator import implements, requires, tag
from lava.magma.core.model.py.model import PyLoihiProcessModel
from lava.magma.core.model.py.ports import PyInPort, PyOutPort
from lava.magma.core.model.py.type import LavaPyType
from lava.magma.core.resources import CPU
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol
from lava.proc.lif.models import AbstractPyLifModelFixed

from qblif_lava import reference
from qblif_lava.process.process import QBLIF


class _PeriodicReset:
    """Zero u and v at the start of scheduled timesteps (as Lava's ``LIFReset``)."""

    def _init_reset(self, proc_params):
        self.reset_mode = proc_params["reset_mode"]
        self.reset_interval = proc_params["reset_interval"]
        self.reset_offset = (proc_params["reset_offset"] % self.reset_interval
                             if self.reset_interval else 0)

    def _maybe_reset(self):
        if self.reset_interval and self.time_step % self.reset_interval == self.reset_offset:
            self.u[:] = 0
            self.v[:] = 0


@implements(proc=QBLIF, protocol=LoihiProtocol)
@requires(CPU)
@tag("bit_accurate_loihi", "fixed_pt")
class PyQBLIFModelFixed(_PeriodicReset, AbstractPyLifModelFixed):
    """Bit-accurate QB-LIF: Loihi LIF sub-threshold dynamics plus a K-step burst."""

    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32, precision=24)
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=8)
    vth: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=17)
    max_burst: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=8)

    def __init__(self, proc_params):
        super().__init__(proc_params)
        self._init_reset(proc_params)
        self.effective_vth = 0

    def scale_threshold(self):
        """theta = vth << 6 (state units). Lava's LIF caches it forever; here
        :meth:`on_var_update` clears the cache, so ``vth.set()`` takes effect."""
        self.effective_vth = np.left_shift(self.vth, self.vth_shift)
        self.isthrscaled = True

    def on_var_update(self):
        """Called by Lava after any ``Var.set()``: rescale threshold and bias."""
        self.isthrscaled = False
        self.isbiasscaled = False

    def spiking_activation(self):
        return reference.burst_count(self.v, self.effective_vth, int(self.max_burst[0]))

    def reset_voltage(self, spike_vector):
        self.v[:] = reference.reset_voltage(self.v, spike_vector, self.effective_vth,
                                            self.reset_mode)

    def run_spk(self):
        a_in_data = self.a_in.recv()
        self._maybe_reset()
        if not self.isbiasscaled:
            self.scale_bias()
        if not self.isthrscaled:
            self.scale_threshold()
        self.subthr_dynamics(activation_in=a_in_data)
        n = self.spiking_activation()
        self.reset_voltage(n)
        self.s_out.send(n)


@implements(proc=QBLIF, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class PyQBLIFModelFloat(_PeriodicReset, PyLoihiProcessModel):
    """Floating-point QB-LIF (spec section 2): for exploring, not for hardware claims."""

    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
    u: np.ndarray = LavaPyType(np.ndarray, float)
    v: np.ndarray = LavaPyType(np.ndarray, float)
    du: float = LavaPyType(float, float)
    dv: float = LavaPyType(float, float)
    vth: np.ndarray = LavaPyType(np.ndarray, float)
    bias_mant: np.ndarray = LavaPyType(np.ndarray, float)
    bias_exp: np.ndarray = LavaPyType(np.ndarray, float)
    max_burst: np.ndarray = LavaPyType(np.ndarray, float)

    def __init__(self, proc_params):
        super().__init__(proc_params)
        self._init_reset(proc_params)

    def run_spk(self):
        a = self.a_in.recv()
        self._maybe_reset()
        scale = 2.0 ** reference.VTH_SHIFT
        bias = self.bias_mant * 2.0 ** self.bias_exp / scale
        self.u[:] = self.u * (1 - (self.du + 1) / reference.DECAY_UNITY) + a
        self.v[:] = self.v * (1 - self.dv / reference.DECAY_UNITY) + self.u + bias
        n = np.clip(np.ceil(self.v / self.vth) - 1, 0, self.max_burst[0])
        if self.reset_mode == "subtract":
            self.v[:] -= n * self.vth
        else:
            self.v[n > 0] = 0
        self.s_out.send(n)
