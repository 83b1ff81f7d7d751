import numpy as np
from lava.magma.core.decorator import implements, requires, tag
from lava.magma.core.model.py.model import PyLoihiProcessModel
from lava.magma.core.model.py.ports import PyInPort, PyOutPort
from lava.magma.core.model.py.type import LavaPyType
from lava.magma.core.resources import CPU
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol

from qblif.lava.procs.delay_line.process import DelayLine


@implements(proc=DelayLine, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt", "bit_accurate_loihi")
class PyDelayLineModel(PyLoihiProcessModel):
    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32, precision=24)
    a_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=24)
    delays: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=6)
    buffer: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=24)
    reset_interval: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=24)
    reset_offset: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=24)
    drop_on_reset: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=1)

    def run_spk(self):
        depth, t = self.buffer.shape[0], self.time_step
        x = self.a_in.recv()
        interval = int(self.reset_interval[0])
        if interval > 0 and t % interval == int(self.reset_offset[0]) % interval:
            self.buffer[:] = 0
            if self.drop_on_reset[0]:
                x = np.zeros_like(x)
        slot = (t + self.delays) % depth
        idx = np.indices(self.delays.shape)
        self.buffer[(slot,) + tuple(idx)] += x.astype(np.int32)
        out = self.buffer[t % depth].copy()
        self.buffer[t % depth] = 0
        self.a_out.send(out)
