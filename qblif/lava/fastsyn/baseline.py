"""In-run baselines for the fast models: the previous QB-LIF ``fixed_pt`` model.

Lava's own ``Dense``/``Conv`` models are the synapse baselines (no code needed: an empty
``exception_proc_model_map``). No torch may be imported here (Lava forks).
"""
import numpy as np
from lava.magma.core.decorator import implements, requires, tag
from lava.magma.core.model.py.ports import PyInPort, PyOutPort
from lava.magma.core.model.py.type import LavaPyType
from lava.magma.core.resources import CPU
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol
from lava.proc.lif.models import AbstractPyLifModelFixed

from qblif.core import reference
from qblif.lava.procs.qblif.models import PeriodicReset
from qblif.lava.procs.qblif.process import QBLIF


@implements(proc=QBLIF, protocol=LoihiProtocol)
@requires(CPU)
@tag("bit_accurate_loihi", "fixed_pt")
class PyQBLIFModelFixedLegacy(PeriodicReset, AbstractPyLifModelFixed):
    """The previous ``fixed_pt`` model (Lava's LIF ``subthr_dynamics`` plus
    :func:`reference.burst_count`), kept as the in-run baseline of the benchmarks
    (``CompiledNetwork.run(models="stock")``). It lives outside ``qblif.lava.procs.qblif``, so
    Lava's model discovery never finds it; select it with ``exception_proc_model_map``.
    """

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

