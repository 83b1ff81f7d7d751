import numpy as np
from lava.magma.core.decorator import implements, requires, tag
from lava.magma.core.model.py.model import PyLoihiProcessModel
from lava.magma.core.model.py.ports import PyInPort, PyRefPort
from lava.magma.core.model.py.type import LavaPyType
from lava.magma.core.resources import CPU
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol

from qblif.lava.procs.recorder.process import Recorder, StateRecorder, open_rows


@implements(proc=Recorder, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt", "bit_accurate_loihi")
class PyRecorderModel(PyLoihiProcessModel):
    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32, precision=24)

    def __init__(self, proc_params):
        super().__init__(proc_params)
        self._rows = None

    def run_spk(self):
        data = self.a_in.recv()
        if self._rows is None:
            p = self.proc_params
            self._rows = np.memmap(p["path"], dtype=np.int32, mode="r+", shape=(p["steps"], p["size"]))
        t = self.time_step - 1
        if t < self._rows.shape[0]:
            self._rows[t] = data


@implements(proc=StateRecorder, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt", "bit_accurate_loihi")
class PyStateRecorderModel(PyLoihiProcessModel):
    """After each step's spiking phase (Lava's management phase, as ``Monitor``), one read
    of each probed Var, written flat to its memmap row ``t - 1``."""
    ref_0: PyRefPort = LavaPyType(PyRefPort.VEC_DENSE, np.int32)
    ref_1: PyRefPort = LavaPyType(PyRefPort.VEC_DENSE, np.int32)
    ref_2: PyRefPort = LavaPyType(PyRefPort.VEC_DENSE, np.int32)

    def __init__(self, proc_params):
        super().__init__(proc_params)
        self._rows = None

    def post_guard(self):
        return True

    def run_post_mgmt(self):
        p = self.proc_params
        if self._rows is None:
            self._rows = open_rows(p["paths"], p["steps"], int(np.prod(p["shape"])))
        t = self.time_step - 1
        if t < p["steps"]:
            for k, rows in enumerate(self._rows):
                rows[t] = getattr(self, f"ref_{k}").read().reshape(-1)
