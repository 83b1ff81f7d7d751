import numpy as np
from lava.magma.core.decorator import implements, requires, tag
from lava.magma.core.model.py.model import PyLoihiProcessModel
from lava.magma.core.model.py.ports import PyInPort, PyOutPort
from lava.magma.core.model.py.type import LavaPyType
from lava.magma.core.resources import CPU
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol

from qblif.lava.procs.graded_lif.process import GradedLIF
from qblif.core.numeric import graded_step
from qblif.core import reference


@implements(proc=GradedLIF, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt", "bit_accurate_loihi")
class PyGradedLIFModel(PyLoihiProcessModel):
    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32, precision=24)
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=24)
    vth: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=24)
    bias_mant: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=24)
    u: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=24)
    v: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=24)

    def run_spk(self):
        p, t = self.proc_params, self.time_step
        a = self.a_in.recv()
        if p["reset_interval"] and t % p["reset_interval"] == p["reset_offset"] % p["reset_interval"]:
            self.u[:] = 0
            self.v[:] = 0
        st = reference.QBLIFState(self.u.copy(), self.v.copy())
        out = graded_step(st, a, du=p["du"], dv=p["dv"], vth=self.vth, bias_mant=self.bias_mant,
                          bias_exp=p["bias_exp"])
        self.u[:] = st.u
        self.v[:] = st.v
        self.s_out.send(out)
