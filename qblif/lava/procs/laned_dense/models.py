"""``fixed_pt`` model of :class:`LanedDense`: Lava ``Dense``'s bit-accurate arithmetic per
lane, as one exact ``(L, N_in) @ (N_in, N_out)`` product (:mod:`qblif.lava.fastsyn`).
No torch here (Lava forks its processes)."""
from __future__ import annotations

import numpy as np
from lava.magma.core.decorator import implements, requires, tag
from lava.magma.core.model.py.model import PyLoihiProcessModel
from lava.magma.core.model.py.ports import PyInPort, PyOutPort
from lava.magma.core.model.py.type import LavaPyType
from lava.magma.core.resources import CPU
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol

from qblif.lava.procs.laned_dense.process import LanedDense
from qblif.lava.fastsyn.kernels import ExactMatrix
from qblif.lava.fastsyn.models import apply_weight_exp, dense_accumulate, scale_dense_weights


@implements(proc=LanedDense, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt", "bit_accurate_loihi")
class PyLanedDenseModel(PyLoihiProcessModel):
    """Ports, Vars and types as Lava's ``PyDenseModelBitAcc``; the weights are scaled on
    the first step (and used raw after a ``Var.set()``, as the stock model uses them)."""
    s_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, bool, precision=1)
    a_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=16)
    a_buff: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=16)
    weights: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=8)
    num_message_bits: np.ndarray = LavaPyType(np.ndarray, int, precision=5)

    def __init__(self, proc_params):
        super().__init__(proc_params)
        self.weights_set = False
        self._matrix = None
        self._lanes = int(proc_params["lanes"])
        self._weight_exp = int(proc_params["weight_exp"])

    def on_var_update(self):
        """A ``Var.set()`` (weights, say) invalidates the cached matrix."""
        self._matrix = None

    def run_spk(self):
        if not self.weights_set:
            self.weights = scale_dense_weights(self.weights, self.proc_params)
            self.weights_set = True
            self._matrix = None
        if self._matrix is None:
            self._matrix = ExactMatrix(np.asarray(self.weights).T)      # (N_in, N_out)
        self.a_out.send(self.a_buff)
        s_in = self.s_in.recv()
        graded = self.num_message_bits.item() > 0
        self.a_buff = apply_weight_exp(
            dense_accumulate(self.weights, self._matrix, s_in, graded, self._lanes),
            self._weight_exp)
