"""Fast, bit-exact CPU process models for Lava's own ``Dense`` and ``Conv`` processes.

They subclass Lava's ``fixed_pt`` models (same ports, Vars, tags and first-step weight
scaling) and replace only the per-step sums by one matrix product
(:mod:`qblif.lava.fastsyn.kernels`). Every observable value equals the stock model's:

``Dense`` (stock ``PyDenseModelBitAcc``): weights clipped to 8 bits and truncated to
``num_weight_bits`` with the sign mode on the first step; each step sends the previous
step's ``a_buff`` (one-step delay), then with graded input (``num_message_bits > 0``)
``a = wrap(W @ s_in)`` in ``result_type(int32, s_in)`` (numpy's ``dot``: exact sum, wrapped
to that width), with binary input ``a = W @ (s_in != 0)`` in int64; then
``a << weight_exp`` (``>>`` for negative exponents); the int32 ``a_out`` channel wraps it.

``Conv`` (stock ``PyConvModelFixed``): a true convolution (scipy's, kernel flipped) of the
int32 weights, which the stock model does not clip, truncate or scale by ``weight_exp``
(neither does this one); graded input as received, binary input as ``s_in != 0``; the sums
cast to int32 as numpy casts float64 (out-of-range values become ``INT32_MIN``), then
Lava's 24-bit ``signed_clamp`` (a wrap). One-step delay as Dense.

Inputs that are not integers (a float source) take the stock code path unchanged.
No torch may be imported here (Lava forks its processes).
"""
from __future__ import annotations

import numpy as np
from lava.proc.conv import utils
from lava.proc.conv.models import PyConvModelFixed
from lava.proc.conv.process import Conv
from lava.proc.dense.models import PyDenseModelBitAcc
from lava.proc.dense.process import Dense
from lava.utils.weightutils import clip_weights, determine_sign_mode, truncate_weights

from qblif.lava.fastsyn.kernels import ExactMatrix, conv_plan, conv_sums, dense_tier, max_abs


def _integer(x: np.ndarray) -> bool:
    return x.dtype.kind in "iub"


def scale_dense_weights(weights: np.ndarray, proc_params) -> np.ndarray:
    """Lava ``Dense``'s first-step weight scaling (``PyDenseModelBitAcc``): clip to 8 bits,
    truncate to ``num_weight_bits`` (default 8), with ``sign_mode`` from ``proc_params`` or
    from the weights (Lava's own ``clip_weights``/``truncate_weights``). Mantissas in, the
    weights the model multiplies out (same shape)."""
    num_weight_bits = proc_params.get("num_weight_bits", 8)
    sign_mode = proc_params.get("sign_mode") or determine_sign_mode(weights)
    weights = clip_weights(weights, sign_mode, num_bits=8)
    return truncate_weights(weights, sign_mode, num_weight_bits)


def stock_path(weights: np.ndarray, s_in: np.ndarray, graded: bool) -> bool:
    """True where ``Dense`` input takes the stock expression (not integer, or a graded
    product numpy would not compute in integers)."""
    return not _integer(s_in) or (graded and np.result_type(weights, s_in).kind != "i")


def _stock_accumulate(weights: np.ndarray, s_in: np.ndarray, graded: bool) -> np.ndarray:
    """``PyDenseModelBitAcc``'s own ``a_accum`` expression."""
    return weights.dot(s_in) if graded else weights[:, s_in.astype(bool)].sum(axis=1)


def dense_accumulate(weights: np.ndarray, matrix: ExactMatrix, s_in: np.ndarray,
                     graded: bool, lanes: int = 1) -> np.ndarray:
    """Lava ``Dense``'s ``a_accum`` (before the exponent) for ``lanes`` samples side by side.

    weights: one lane's scaled weights ``(N_out, N_in)``; matrix: ``ExactMatrix(weights.T)``;
    s_in: ``(lanes*N_in,)`` lane-outer (lane l at ``l*N_in ..``). Returns ``(lanes*N_out,)``
    lane-outer: per lane what Lava's ``PyDenseModelBitAcc`` computes, graded
    ``W @ s_in`` in ``result_type(W, s_in)`` (numpy's ``dot``: exact sum wrapped to that
    width), binary ``W @ (s_in != 0)`` in int64, as one exact ``(lanes, N_in) @ (N_in,
    N_out)`` product. Input that is not integer takes the stock expressions per lane."""
    x = s_in.reshape(lanes, -1)
    if stock_path(weights, s_in, graded):
        return np.concatenate([_stock_accumulate(weights, xl, graded) for xl in x])
    if not graded:
        x = x != 0
    tier = dense_tier(matrix, max_abs(x) if graded else 1)
    sums = matrix.matmul(x[None], tier)[0].reshape(-1)
    acc = np.result_type(weights, s_in) if graded else np.int64
    return sums.astype(np.int64).astype(acc)          # numpy dot's wrap to acc width


def apply_weight_exp(a_accum: np.ndarray, weight_exp: int) -> np.ndarray:
    """Lava ``Dense``'s exponent: ``a << weight_exp``, or ``>>`` (floor) for a negative one."""
    return (np.left_shift(a_accum, weight_exp) if weight_exp > 0
            else np.right_shift(a_accum, -weight_exp))


class FastDenseModel(PyDenseModelBitAcc):
    """Lava ``Dense``, ``fixed_pt``: the stock model's arithmetic as one exact BLAS product
    (the compiler's sample lanes use :class:`qblif.lava.procs.laned_dense.LanedDense`, whose
    model shares this arithmetic)."""

    def __init__(self, proc_params):
        super().__init__(proc_params)
        self._matrix = None

    def on_var_update(self):
        """A ``Var.set()`` (weights, say) invalidates the cached matrix."""
        self._matrix = None

    def run_spk(self):
        self.weight_exp = self.proc_params.get("weight_exp", 0)
        if not self.weights_set:
            self.weights = scale_dense_weights(self.weights, self.proc_params)
            self.weights_set = True
            self._matrix = None
        if self._matrix is None:
            self._matrix = ExactMatrix(np.asarray(self.weights).T)      # (Nin, Nout)
        self.a_out.send(self.a_buff)
        s_in = self.s_in.recv()
        graded = self.num_message_bits.item() > 0
        self.a_buff = apply_weight_exp(
            dense_accumulate(self.weights, self._matrix, s_in, graded), self.weight_exp)


class FastConvModel(PyConvModelFixed):
    """Lava ``Conv``, ``fixed_pt``: im2col plus one exact BLAS product per step."""

    def __init__(self, proc_params):
        super().__init__(proc_params)
        self._plan = None

    def on_var_update(self):
        self._plan = None

    def _groups(self) -> int:
        """The process's ``groups``: Lava's models keep it in an int8 Var, which wraps past
        127 (sample lanes multiply it), so it is read from the process parameters."""
        try:
            return int(self.proc_params["groups"])
        except KeyError:          # (ProcessParameters has no ``in``)
            return int(self.groups[0])

    def run_spk(self):
        self.a_out.send(self.a_buf)
        s_in = self.s_in.recv()
        if self.num_message_bits.item() <= 0:
            s_in = s_in.astype(bool)
        if not _integer(s_in):
            a_out = utils.conv(s_in, self.weight, self.kernel_size, self.stride, self.padding,
                               self.dilation, self._groups())
        else:
            if self._plan is None:
                self._plan = conv_plan(s_in.shape, self.weight, self.stride, self.padding,
                                       self.dilation, self._groups())
            sums = conv_sums(s_in, self._plan)
            if sums.dtype != np.float32:            # float32 sums are below 2**24: no range
                sums = np.asarray(sums, dtype=np.float64)   # issue; else cast as utils.conv
            with np.errstate(invalid="ignore"):     # out of int32: INT32_MIN, as utils.conv
                a_out = sums.astype(self.weight.dtype)
        lim = 2 ** 23                 # signed_clamp(x, 24) is the identity inside 24 bits
        in_range = a_out.size == 0 or (a_out.max() < lim and a_out.min() >= -lim)
        self.a_buf = a_out if in_range else self.clamp_precision(a_out)


def fast_models() -> dict:
    """``exception_proc_model_map`` entries selecting the fast models for Lava's processes:
    pass to ``Loihi2SimCfg(select_tag="fixed_pt", exception_proc_model_map=...)``."""
    return {Dense: FastDenseModel, Conv: FastConvModel}
