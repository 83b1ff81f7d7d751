"""A test-only Lava process whose model raises on a chosen step (for leak tests).

It is a sink: a process that raises while others block on its output would
deadlock Lava 0.10's runtime (the others never answer); a failing consumer is
the case Lava reports as an error.
"""
import numpy as np
from lava.magma.core.decorator import implements, requires, tag
from lava.magma.core.model.py.model import PyLoihiProcessModel
from lava.magma.core.model.py.ports import PyInPort
from lava.magma.core.model.py.type import LavaPyType
from lava.magma.core.process.ports.ports import InPort
from lava.magma.core.process.process import AbstractProcess
from lava.magma.core.resources import CPU
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol


class FailingSink(AbstractProcess):
    """Receives on ``a_in`` every step and raises RuntimeError on step ``fail_at``."""

    def __init__(self, *, shape, fail_at=3):
        super().__init__(shape=shape, fail_at=fail_at)
        self.a_in = InPort(shape=shape)


@implements(proc=FailingSink, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyFailingSink(PyLoihiProcessModel):
    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32, precision=24)

    def run_spk(self):
        self.a_in.recv()
        if self.time_step >= self.proc_params["fail_at"]:
            raise RuntimeError("deliberate failure for the leak test")
