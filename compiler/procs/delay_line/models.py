import numpy as np
from lava.magma.core.decorator import implements, requires, tag
from lava.magma.core.model.py.model import PyLoihiProcessModel
from lava.magma.core.model.py.ports import PyInPort, PyOutPort
from lava.magma.core.model.py.type import LavaPyType
from lava.magma.core.resources import CPU
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol

from compiler.procs.delay_line.process import DelayLine


@implements(proc=DelayLine, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt", "bit_accurate_loihi")
class PyDelayLineModel(PyLoihiProcessModel):
    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32, precision=24)
    a_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=24)
    delays: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=6)
    buffer: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=24)

    def run_spk(self):
        depth, t = self.buffer.shape[0], self.time_step
        x = self.a_in.recv()
        slot = (t + self.delays) % depth
        idx = np.indices(self.delays.shape)
        self.buffer[(slot,) + tuple(idx)] += x.astype(np.int32)
        out = self.buffer[t % depth].copy()
        self.buffer[t % depth] = 0
        self.a_out.send(out)
