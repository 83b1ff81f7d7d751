"""The exact engine's native CPU kernel (``qblif_scan.c``): built once with the system C
compiler into a per-user cache and loaded with ctypes; ``None`` where that is not possible
(no compiler, ``QBLIF_NATIVE=0``), and the engine then runs its torch code.

The kernel runs a QB-LIF layer's T steps for a whole chunk in one pass over memory (the
torch code takes about 15 elementwise passes per step); it mirrors
:mod:`qblif.core.reference` in int64 with the same int32 casts, so it is exact for any
input (tests/test_exact_engine.py compares it with the reference on wrap and clip cases).
"""
from __future__ import annotations

import ctypes
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from qblif.core.native import build_library, lazy_library

SOURCE = Path(__file__).with_name("qblif_scan.c")
_DTYPES = {torch.int32: 0, torch.float32: 1, torch.float64: 2, torch.int64: 3}


def _build() -> Optional[ctypes.CDLL]:
    lib = build_library(SOURCE)
    f = lib.qblif_scan
    i64, ptr = ctypes.c_int64, ctypes.c_void_p
    f.argtypes = [ptr, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_int, i64, i64, i64, i64, i64,
                  ptr, i64, ptr, i64, i64, ctypes.c_int, ptr, ptr, ptr, ptr, i64, i64,
                  ptr, ctypes.c_int, i64, i64, i64, i64, i64, i64, ctypes.c_int32]
    f.restype = ctypes.c_int
    g = lib.conv_scan
    g.argtypes = [ptr, ctypes.c_int, ctypes.c_int] + [i64] * 15 + [ptr, i64, ptr, i64, ptr, i64,
                                                                     i64, ctypes.c_int] + \
        [ptr] * 4 + [i64, i64]
    g.restype = ctypes.c_int
    return lib


#: the loaded kernel library, or None (no compiler, build failed, ``QBLIF_NATIVE=0``)
library = lazy_library(_build)


def _param(value, n: int):
    """A scalar or an (N,) array -> (contiguous int32 tensor, its length 1 or N)."""
    t = torch.as_tensor(np.asarray(value, np.int64).reshape(-1).astype(np.int32))
    return t.contiguous(), t.numel()


def qblif_scan(p, a: torch.Tensor, static: bool, in_wrap: int, steps: int, record_uv: bool,
               threads: int, narrow: bool = False, sums: bool = False) -> dict:
    """The kernel on a CPU tensor ``a`` ((B, *shape) if ``static`` else (B, T, *shape), any
    of int32/int64/float32/float64 holding integers), wrapped first by ``in_wrap`` (24, 32
    or 0, see :func:`qblif.exact.engine.as_int32`); ``p`` a :class:`QBLIFParams` (numpy
    parameters, channels-last); ``narrow``: the caller proved ``|a| < 2^17`` (before the
    wrap) and ``|bias| < 2^24``, which allows the int32 fast variant. ``threads``: sample
    ranges run on that many threads. Returns ``{"n": uint8 (B, T, *shape)}`` (counts
    0..K <= 255; + int32 ``u``, ``v``; + with ``sums`` the per-neuron count sums over the batch
    and steps, int64 ``"sums"`` of ``shape``)."""
    a = a.contiguous()
    shape = tuple(a.shape[1:] if static else a.shape[2:])
    return _scan(p, a.data_ptr(), _DTYPES[a.dtype], a.shape[0], shape, static, in_wrap, steps,
                 record_uv, threads, narrow, (None, 0, 0, 0, 0, 0, 0, 0, 0), sums)


def qblif_scan_pool(p, x: torch.Tensor, static: bool, kernel, out_hw, weight: int, steps: int,
                    record_uv: bool, threads: int, sums: bool = False) -> dict:
    """:func:`qblif_scan` of a layer whose synapse is a pooling with a uniform kernel of
    ``weight``, stride = ``kernel``, no padding, dilation 1, computed inside the kernel from the
    counts ``x`` ((B, [T,] H, W, C) uint8 or int32, channels-last). The caller proved the
    fast variant's conditions (``|a| < 2^17``: ``weight * kH * kW * max x``; du = 4095,
    dv = 0, ``|bias| < 2^24``); ``sums`` as :func:`qblif_scan`."""
    x = x.contiguous()
    h, w, c = x.shape[-3:]
    shape = (int(out_hw[0]), int(out_hw[1]), int(c))
    code = {torch.uint8: 4, torch.int32: 0}[x.dtype]
    return _scan(p, None, 0, x.shape[0], shape, static, 0, steps, record_uv, threads, True,
                 (x.data_ptr(), code, h, w, c, int(kernel[0]), int(kernel[1]), shape[1],
                  int(weight)), sums)


def conv_scan(p, x: torch.Tensor, static: bool, geometry: tuple, weight: torch.Tensor,
              steps: int, record_uv: bool, threads: int, sums: bool = False) -> dict:
    """A conv (or dense) synapse on sparse integer input fused with the fast neuron variant
    (``conv_scan`` in qblif_scan.c). ``x``: channels-last frames ``(B, H, W, C)`` if ``static``
    else ``(B, T_x >= steps, H, W, C)`` (a dense layer: ``H = W = 1``), uint8 or int32;
    ``geometry``: ``(KH, KW, SH, SW, PH, PW, DH, DW, OH, OW)``; ``weight``: float32
    ``(KH*KW*C, CO)`` of integers, rows tap-major, channel-minor. The caller proved the fast
    variant's conditions: ``sum |w| * max|x| < 2^17`` (exact float32 sums, no synaptic wrap),
    du = 4095, dv = 0, ``|bias| < 2^24``. Returns ``{"n": uint8 (B, steps, OH, OW, CO)}``
    (+ int32 ``u``, ``v``; + int64 per-neuron count sums ``"sums"`` (OH, OW, CO) with ``sums``)."""
    lib = library()
    kh, kw, sh, sw, ph, pw, dh, dw, oh, ow = (int(g) for g in geometry)
    b = x.shape[0]
    h, w_, c = (int(s) for s in x.shape[-3:])
    if x.stride(-1) != 1 or x.stride(-2) != c or x.stride(-3) != w_ * c or \
            (not static and x.stride(1) != h * w_ * c):
        x = x.contiguous()
    co = int(weight.shape[1])
    weight = weight.contiguous()
    shape = (oh, ow, co)
    n_el = oh * ow * co
    if not hasattr(p, "_native"):
        p._native = _param(p.theta, n_el) + _param(p.bias, n_el)
    theta, theta_n, bias, bias_n = p._native
    out = {"n": torch.empty((b, steps) + shape, dtype=torch.uint8)}
    if record_uv:
        out["u"] = torch.empty((b, steps) + shape, dtype=torch.int32)
        out["v"] = torch.empty_like(out["u"])
    parts = max(1, min(int(threads), b))
    cuts = [b * j // parts for j in range(parts + 1)]
    sum_rows = _sum_rows(parts, n_el, b, steps, sums)
    code = {torch.uint8: 4, torch.int32: 0}[x.dtype]
    args = (x.data_ptr(), code, int(static), int(x.stride(0)), h, w_, c, kh, kw, sh, sw, ph, pw,
            dh, dw, oh, ow, co, weight.data_ptr(), int(steps), theta.data_ptr(), theta_n,
            bias.data_ptr(), bias_n, p.k, int(p.subtract), out["n"].data_ptr(),
            out["u"].data_ptr() if record_uv else None,
            out["v"].data_ptr() if record_uv else None)

    _run_parts(lambda j, srow: lib.conv_scan(*args, srow, cuts[j], cuts[j + 1]), parts,
               sum_rows, MemoryError("conv_scan: out of memory"))
    if sums:
        out["sums"] = sum_rows.sum(0, dtype=torch.int64).reshape(shape)
    return out


def _sum_rows(parts: int, n_el: int, b: int, steps: int, sums: bool):
    """One int32 row of per-neuron count sums per thread (None without ``sums``); a thread's
    samples x steps x K must fit int32."""
    if not sums:
        return None
    if b * steps * 255 >= 2 ** 31:
        raise ValueError(f"a chunk of {b} samples x {steps} steps is too long for int32 sums")
    return torch.zeros((parts, n_el), dtype=torch.int32)


def _run_parts(call, parts: int, sum_rows, error: Exception) -> None:
    """``call(j, sum_row_ptr)`` for the sample ranges ``j`` in ``range(parts)``, in parallel
    (ctypes releases the GIL); raises ``error`` if any returns non-zero."""
    def part(j):
        return call(j, sum_rows[j].data_ptr() if sum_rows is not None else None)
    rcs = [part(0)] if parts == 1 else list(_pool(parts).map(part, range(parts)))
    if any(rcs):
        raise error


def _scan(p, a_ptr, a_code, b, shape, static, in_wrap, steps, record_uv, threads, narrow, pool,
          sums=False):
    lib = library()
    n_el = int(np.prod(shape))
    if not hasattr(p, "_native"):
        p._native = _param(p.theta, n_el) + _param(p.bias, n_el)
    theta, theta_n, bias, bias_n = p._native
    out = {"n": torch.empty((b, steps) + shape, dtype=torch.uint8)}     # counts 0..K <= 255
    if record_uv:
        out["u"] = torch.empty((b, steps) + shape, dtype=torch.int32)
        out["v"] = torch.empty_like(out["u"])
    args = (a_ptr, a_code, int(static), int(in_wrap), int(narrow), b,
            int(steps), n_el, p.cu, p.cv, theta.data_ptr(), theta_n, bias.data_ptr(), bias_n,
            p.k, int(p.subtract), out["n"].data_ptr(),
            out["u"].data_ptr() if record_uv else None,
            out["v"].data_ptr() if record_uv else None)
    parts = max(1, min(int(threads), b))
    cuts = [b * j // parts for j in range(parts + 1)]
    sum_rows = _sum_rows(parts, n_el, b, steps, sums)

    _run_parts(lambda j, srow: lib.qblif_scan(*args, srow, cuts[j], cuts[j + 1], *pool), parts,
               sum_rows, RuntimeError("qblif_scan: fused pooling outside the fast variant"))
    if sums:
        out["sums"] = sum_rows.sum(0, dtype=torch.int64).reshape(shape)
    return out


_pools: dict = {}


def _pool(n: int) -> ThreadPoolExecutor:
    if n not in _pools:
        _pools[n] = ThreadPoolExecutor(n, thread_name_prefix="qblif-scan")
    return _pools[n]
