import numpy as np
from lava.magma.core.decorator import implements, requires, tag
from lava.magma.core.model.py.model import PyLoihiProcessModel
from lava.magma.core.model.py.ports import PyOutPort
from lava.magma.core.model.py.type import LavaPyType
from lava.magma.core.resources import CPU
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol

from qblif.lava.procs.source.process import FrameSource, frame_at


def thermometer(x: np.ndarray, lanes: int) -> np.ndarray:
    """``x`` -> lanes ``(x[..., None] > arange(lanes))`` merged into the last axis, int32."""
    if lanes == 1:
        return x.astype(np.int32)
    t = (x[..., None] > np.arange(lanes)).astype(np.int32)
    return t.reshape(x.shape[:-1] + (x.shape[-1] * lanes,))


@implements(proc=FrameSource, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt", "bit_accurate_loihi")
class PyFrameSourceModel(PyLoihiProcessModel):
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=24)
    frames: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=24)

    def run_spk(self):
        p = self.proc_params
        x = frame_at(self.frames, self.time_step, p["steps"], p["stream"])
        self.s_out.send(thermometer(x, p["lanes"]))
