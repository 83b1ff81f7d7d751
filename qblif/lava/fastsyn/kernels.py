"""Exact integer matrix products for the fast synapse models (pure numpy, no Lava).

The stock Lava CPU models compute a synapse's sums one output (``Dense``: numpy's integer
``dot``) or one channel pair (``Conv``: ``scipy.signal.convolve2d`` in float64) at a time.
Here each step is one matrix product, exact by construction:

* ``f32`` tier: float32 BLAS when the same bound is below 2**24 (float32's exact integers),
  about twice as fast as float64.
* ``f64`` tier: float64 BLAS when ``bound = max_j sum_i |M[i, j]| * max|x| < 2**53``.
  Every product and every partial sum, in any summation order, is then an integer of
  magnitude below 2**53, so float64 represents it exactly (FMA included).
* ``i64`` tier: numpy's int64 product (no BLAS; wraps modulo 2**64 like numpy's integer
  ``dot``, whose accumulator is int64 too), exact while ``bound < 2**63``.
* ``object`` tier (only where a caller asks for exact sums past 2**63): Python integers.

All values are integers in the synapse's own units (weight mantissa times payload).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from qblif.core.constants import F32_EXACT, F64_EXACT  # noqa: E402,F401 (exact float ranges)
I64_EXACT = 2 ** 63


def max_abs(x: np.ndarray) -> int:
    """``max |x|`` as a Python int (no int32 overflow at ``INT32_MIN``); 0 for empty arrays."""
    if x.size == 0:
        return 0
    return max(int(x.max()), -int(x.min()))


class ExactMatrix:
    """An integer matrix ``M`` of shape ``(G, k, m)`` (G independent groups) for exact
    products ``x @ M`` with integer ``x`` of shape ``(G, p, k)``.

    ``col_abs_sum`` is ``max_j sum_i |M[g, i, j]|`` over all groups (a Python int): the
    largest sum any output can reach per unit of ``max|x|``.
    """

    def __init__(self, m: np.ndarray):
        m = np.asarray(m)
        if m.ndim == 2:
            m = m[None]
        self.i64 = np.ascontiguousarray(m, dtype=np.int64)
        self.f64 = self.i64.astype(np.float64)
        self.f32 = self.i64.astype(np.float32)     # exact where the f32 tier is chosen
        self.col_abs_sum = int(np.abs(self.i64).sum(axis=1).max()) if m.size else 0
        self.groups, self.k, self.m = m.shape

    def tier(self, xmax: int) -> str:
        """The cheapest exact tier for inputs with ``max|x| <= xmax``."""
        bound = self.col_abs_sum * int(xmax)
        if bound < F32_EXACT:
            return "f32"
        if bound < F64_EXACT:
            return "f64"
        return "i64" if bound < I64_EXACT else "object"

    def matmul(self, x: np.ndarray, tier: str) -> np.ndarray:
        """``x @ M`` per group: ``x`` integer ``(G, p, k)`` -> ``(G, p, m)``, exact in ``tier``
        (float32 in ``f32``, float64 in ``f64``, int64 in ``i64``, Python ints in ``object``)."""
        if tier == "f32":
            w, x = self.f32, x.astype(np.float32, copy=False)
        elif tier == "f64":
            w, x = self.f64, x.astype(np.float64, copy=False)
        elif tier == "i64":
            w, x = self.i64, x.astype(np.int64, copy=False)
        else:
            w, x = self.i64.astype(object), x.astype(object)
        if self.groups == 1:
            return (x[0] @ w[0])[None]
        if self.m == 1:                          # depthwise (pooling): one column per group
            return (x * w[:, None, :, 0]).sum(axis=2)[..., None]
        return np.matmul(x, w)


def dense_tier(matrix: ExactMatrix, xmax: int) -> str:
    """Dense needs no ``object`` tier: numpy's integer ``dot`` (the stock model) wraps its
    int64 accumulator modulo 2**64, and so does the ``i64`` tier."""
    t = matrix.tier(xmax)
    return "i64" if t == "object" else t


@dataclass
class ConvPlan:
    """im2col plan of one Lava ``Conv`` (see :func:`conv_plan`)."""
    index: np.ndarray          # (G, P, Kx*Ky*Cg) into the flattened input + one zero slot
    matrix: ExactMatrix        # (G, Kx*Ky*Cg, Kg), the spatially flipped kernel
    out_shape: tuple           # (Xo, Yo, K)
    rows: np.ndarray = None    # depthwise (Cg = Kg = 1) only: (taps, P) pixel rows


def conv_plan(input_shape, weight: np.ndarray, stride, padding, dilation,
              groups: int) -> ConvPlan:
    """im2col plan of Lava's ``Conv`` (a true convolution, as ``scipy.signal.convolve2d``).

    input_shape ``(X, Y, C)`` and weight ``(K, Kx, Ky, C // groups)`` in Lava order; stride,
    padding, dilation ``(x, y)``. ``index`` points into the flattened input with one extra
    zero slot at position ``X*Y*C`` (the padding). The output at ``(xo, yo, g*Kg + k)`` is
    ``(input[index[g]] @ matrix[g])[xo*Yo + yo, k]``. For depthwise kernels (one input and
    one output channel per group: our pooling layers) ``rows`` holds, per tap, the input
    pixel row of every output pixel (``X*Y``: the zero row).
    """
    X, Y, C = (int(v) for v in input_shape)
    K, Kx, Ky, Cg = weight.shape
    (sx, sy), (px, py), (dx, dy) = ([int(v) for v in a] for a in (stride, padding, dilation))
    G = int(groups)
    Kg = K // G
    Xo = (X + 2 * px - dx * (Kx - 1) - 1) // sx + 1
    Yo = (Y + 2 * py - dy * (Ky - 1) - 1) // sy + 1
    xo, yo, bx, by = np.meshgrid(np.arange(Xo), np.arange(Yo), np.arange(Kx), np.arange(Ky),
                                 indexing="ij")
    xi = xo * sx + bx * dx - px                       # (Xo, Yo, Kx, Ky) input coordinates
    yi = yo * sy + by * dy - py
    valid = (xi >= 0) & (xi < X) & (yi >= 0) & (yi < Y)
    pixel = np.where(valid, xi * Y + yi, X * Y).reshape(Xo * Yo, Kx * Ky)     # (P, taps)
    index = np.empty((G, Xo * Yo, Kx * Ky * Cg), dtype=np.intp)
    for g in range(G):
        ch = g * Cg + np.arange(Cg)
        idx = pixel[:, :, None] * C + ch[None, None, :]               # (P, taps, Cg)
        idx[np.broadcast_to(pixel[:, :, None] == X * Y, idx.shape)] = X * Y * C
        index[g] = idx.reshape(Xo * Yo, -1)
    # tap (bx, by) meets the kernel element (Kx-1-bx, Ky-1-by): convolution, not correlation
    flipped = np.asarray(weight)[:, ::-1, ::-1, :].reshape(G, Kg, Kx * Ky * Cg)
    rows = np.ascontiguousarray(pixel.T) if (Cg == 1 and Kg == 1 and G > 1) else None
    return ConvPlan(index, ExactMatrix(flipped.transpose(0, 2, 1)), (Xo, Yo, K), rows)


def conv_sums(x: np.ndarray, plan: ConvPlan, tier: str = None) -> np.ndarray:
    """Exact convolution sums of integer ``x`` ``(X, Y, C)`` -> ``plan.out_shape``
    (float32 / float64 in the float tiers, else int64 or Python ints; ``tier`` None: the
    cheapest exact one for ``max|x|``)."""
    m = plan.matrix
    tier = m.tier(max_abs(x)) if tier is None else tier
    dt = {"f32": np.float32, "f64": np.float64, "i64": np.int64}.get(tier, object)
    if plan.rows is not None and tier != "object":       # depthwise: one multiply-add per tap
        X, Y, C = x.shape
        pix = np.zeros((X * Y + 1, C), dtype=dt)
        pix[:-1] = x.reshape(X * Y, C)
        w = {"f32": m.f32, "f64": m.f64}.get(tier, m.i64)[:, :, 0].T   # (taps, C)
        acc = pix[plan.rows[0]] * w[0]
        for t in range(1, len(plan.rows)):
            acc += pix[plan.rows[t]] * w[t]
        return acc.reshape(plan.out_shape)
    flat = np.zeros(x.size + 1, dtype=dt)
    flat[:-1] = x.reshape(-1)
    s = m.matmul(flat[plan.index], tier)                              # (G, P, Kg)
    return s.transpose(1, 0, 2).reshape(plan.out_shape)
