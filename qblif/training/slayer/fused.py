"""The quantized QB-LIF dynamics as one fused autograd function (``qblif_burst.c``).

:class:`QuantizedBurst` runs a whole ``(B, T, M)`` block of neurons (B samples, T steps,
M neurons in memory order) in one pass: the forward is :func:`qblif.core.reference.step`
bit for bit (int64 in C), the backward is the gradient autograd gives for the step-by-step
quantized formulas of :class:`qblif.training.slayer.neuron.Neuron` (straight-through rounding
and wraps, the clip mask of ``v``, the ReLSG-ET surrogate, the reset through ``n`` and
``theta``), from two float32 records of the forward (``n`` and ``v`` before the reset). ``None`` from
:func:`library` (no C compiler, ``QBLIF_NATIVE=0``) means the caller uses its torch code.

Units: ``z`` the synaptic input in SLAYER units (``a / 64``, float32); ``theta`` per neuron in
SLAYER units (``vThMant / 64``: the chip comparator is ``theta * 4096 = vThMant << 6``);
``i_decay`` = iDecay = du + 1 in [1, 4096], ``v_decay`` = vDecay = dv in [0, 4095].
"""
from __future__ import annotations

import ctypes
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch

from qblif.core.native import CFLAGS as BASE_CFLAGS, build_library, lazy_library
from qblif.core.reference import ACT_SHIFT, DECAY_UNITY, VTH_SHIFT

SOURCE = Path(__file__).with_name("qblif_burst.c")
S_SCALE = 1 << (ACT_SHIFT + VTH_SHIFT)          # chip state = SLAYER state * 4096
#: no errno from floor/trunc/nearbyint, so the neuron loop vectorises (no fast-math: exact)
CFLAGS = BASE_CFLAGS + ("-fno-math-errno", "-fno-trapping-math")
_pools: dict = {}


def _load() -> ctypes.CDLL:
    """The built kernels with their argument types."""
    lib = _build()
    i64, ptr, cint, dbl = ctypes.c_int64, ctypes.c_void_p, ctypes.c_int, ctypes.c_double
    lib.qb_forward.argtypes = [ptr, ptr, ptr, i64, i64, i64, i64, ptr, dbl, dbl, cint, cint]
    lib.qb_backward.argtypes = [ptr, ptr, ptr, ptr, ptr, i64, i64, i64, i64, ptr, dbl, dbl,
                                cint, cint, dbl, dbl]
    lib.qb_forward.restype = lib.qb_backward.restype = cint
    return lib


def _build() -> ctypes.CDLL:
    """With glibc's vector exp (libmvec) where it links, else without (scalar exp)."""
    try:
        return build_library(SOURCE, CFLAGS + ("-DQBLIF_MVEC",), ("-lmvec", "-lm"))
    except subprocess.SubprocessError:
        return build_library(SOURCE, CFLAGS, ("-lm",))


#: the loaded kernels, or None (no compiler, a failed build, ``QBLIF_NATIVE=0``)
library = lazy_library(_load)


def _ranges(b: int):
    """Sample ranges, one per torch thread (ctypes releases the GIL)."""
    parts = max(1, min(torch.get_num_threads(), b))
    return [(b * j // parts, b * (j + 1) // parts) for j in range(parts)]


def _run(fn, b: int):
    ranges = _ranges(b)
    if len(ranges) == 1:
        rcs = [fn(*ranges[0])]
    else:
        if len(ranges) not in _pools:
            _pools[len(ranges)] = ThreadPoolExecutor(len(ranges), thread_name_prefix="qblif-burst")
        rcs = list(_pools[len(ranges)].map(lambda r: fn(*r), ranges))
    if any(rcs):
        raise MemoryError("qblif_burst: out of memory for the state buffers")


class QuantizedBurst(torch.autograd.Function):
    """``QuantizedBurst.apply(z, theta, i_decay, v_decay, max_burst, zero_reset, width, scale)``
    -> counts ``n`` float32 ``(B, T, M)`` (0..K).

    ``z``: float32 ``(B, T, M)`` contiguous; ``theta``: float ``(M,)`` (SLAYER units, multiples
    of 1/64, gradient returned); ``i_decay``, ``v_decay``: ints; ``width``, ``scale``: the
    ReLSG-ET tail width (units of theta) and gradient scale; ``record``: keep what the
    backward needs (:func:`quantized_burst` sets it). States start at zero."""

    @staticmethod
    def forward(ctx, z, theta, i_decay, v_decay, max_burst, zero_reset, width, scale,
                record=True):
        lib = library()
        b, t, m = z.shape
        z = z.contiguous()
        th = torch.round(theta.detach().double() * S_SCALE).contiguous()     # vth << 6
        ku, kv = DECAY_UNITY - int(i_decay), DECAY_UNITY - int(v_decay)
        n = torch.empty_like(z)
        grad = bool(record)
        pre = torch.empty_like(z) if grad else None            # v before the reset
        args = (z.data_ptr(), n.data_ptr(), pre.data_ptr() if grad else None)
        _run(lambda b0, b1: lib.qb_forward(*args, b0, b1, t, m, th.data_ptr(), ku, kv,
                                           int(max_burst), int(zero_reset)), b)
        ctx.save_for_backward(pre, n, th)
        ctx.params = (ku, kv, int(max_burst), int(zero_reset), float(width), float(scale))
        return n

    @staticmethod
    def backward(ctx, gn):
        lib = library()
        pre, n, th = ctx.saved_tensors
        ku, kv, k, zero, width, scale = ctx.params
        b, t, m = pre.shape
        gn = gn.to(torch.float32).contiguous()
        gz = torch.empty_like(pre)
        ranges = _ranges(b)
        gths = [torch.zeros(m, dtype=torch.float64) for _ in ranges]
        args = (pre.data_ptr(), n.data_ptr(), gn.data_ptr(), gz.data_ptr())

        def part(b0, b1):
            j = ranges.index((b0, b1))
            return lib.qb_backward(*args, gths[j].data_ptr(), b0, b1, t, m, th.data_ptr(), ku,
                                   kv, k, zero, width, scale)
        _run(part, b)
        gtheta = (sum(gths) * S_SCALE).to(torch.float32) if ctx.needs_input_grad[1] else None
        return gz, gtheta, None, None, None, None, None, None, None


def quantized_burst(z: torch.Tensor, theta: torch.Tensor, i_decay: int, v_decay: int,
                    max_burst: int, zero_reset: bool, width: float = 1.0,
                    scale: float = 1.0) -> torch.Tensor:
    """:class:`QuantizedBurst` keeping the backward's records only when autograd needs them."""
    record = torch.is_grad_enabled() and (z.requires_grad or theta.requires_grad)
    return QuantizedBurst.apply(z, theta, i_decay, v_decay, max_burst, zero_reset, width, scale,
                                record)
