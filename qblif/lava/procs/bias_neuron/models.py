import numpy as np
from lava.magma.core.decorator import implements, requires, tag
from lava.magma.core.model.py.model import PyLoihiProcessModel
from lava.magma.core.model.py.ports import PyOutPort
from lava.magma.core.model.py.type import LavaPyType
from lava.magma.core.resources import CPU
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol

from qblif.lava.procs.bias_neuron.process import BiasNeuron
from qblif.schedule import frame_at
from qblif.core import reference

from qblif.core.constants import NETX_BIAS_EXP as BIAS_EXP  # noqa: E402 (stock NetX: bias_exp = 6 for CUBA/LOIHI)


@implements(proc=BiasNeuron, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt", "bit_accurate_loihi")
class PyBiasNeuronModel(PyLoihiProcessModel):
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=1)
    frames: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=24)
    vth: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=24)
    u: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=24)
    v: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=24)

    def run_spk(self):
        p, t = self.proc_params, self.time_step
        if p["reset_interval"] and t % p["reset_interval"] == p["reset_offset"] % p["reset_interval"]:
            self.u[:] = 0
            self.v[:] = 0
        st = reference.QBLIFState(self.u.copy(), self.v.copy())
        bias = frame_at(self.frames, t, p["steps"], p["stream"])
        n = reference.step(st, 0, du=p["du"], dv=p["dv"], vth=self.vth, bias_mant=bias,
                           bias_exp=BIAS_EXP, max_burst=1, reset_mode="zero")
        self.u[:] = st.u
        self.v[:] = st.v
        self.s_out.send(n)
