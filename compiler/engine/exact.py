"""Batched exact engine: the compiled IR's fixed-point arithmetic in torch, CPU or CUDA,
for many samples at once. Count for count it equals :func:`compiler.forward.forward` (the
numpy oracle, built on :mod:`qblif_lava.reference`) and so the emitted Lava graph.

Execution. Samples are cut into chunks of ``batch_size``; a chunk goes through the layers
in order. A synaptic layer computes its input for all ``B*T`` (sample, step) pairs of the
chunk at once (dense: one matrix product; conv: im2col + one matrix product; pool: strided
adds), then its neuron scans the T steps with a state of shape ``(B, *shape)``. The first
layer's input is the frame, the same on all T steps: its synapse runs once per sample.
3-D layers are held channels-last, ``(H, W, C)``, inside; results are in file order.

Exactness, by construction:

* Synapses sum integers. A float32 (float64) matrix product of integers is exact when the
  sum of absolute values of every output, ``max_o sum_i |w_oi| * max|x|``, is at most 2^24
  (2^53): every partial sum is then an integer the format holds. The engine computes that
  bound for every product from the weights and the input's bound (K for QB-LIF counts, the
  largest frame value, the measured largest value of graded SDNN messages) and picks
  float32, float64 or int64 (int64 products run on the CPU). Conv never goes through a
  library convolution (Winograd / FFT algorithms are not exact); dense wraps to int32 as
  Lava ``Dense``, conv and pool to 24 bits as Lava ``Conv`` (:mod:`compiler.numeric`).
* The neuron (spec section 1, :mod:`qblif_lava.reference`): on the CPU the native kernel
  (:mod:`compiler.engine.native`, one pass per layer, uint8 counts, pooling fused where it
  can be); else (and on CUDA) two torch step functions: a wide one mirroring the reference's
  int32 casts and wraps in int64, for any input; and a narrow int32 one, used for a chunk
  when its largest synaptic input is below 2^17 and the bias below 2^24: u then stays within
  24 bits and no int32 sum can overflow, so the 24-bit wrap of ``u`` is the only wrap (none
  when ``du = 4095``). The burst is counted by K compares (``n = sum_j [v > j*theta]``, for
  K <= 8) or by a floor division.
* SDNN layers (Lava's sigma-delta models, as :class:`compiler.forward.SDNNState`) are never
  reset: their state runs from sample to sample and chunk to chunk, starting from the state
  the oracle's warm-up (:func:`_warmup`) leaves.

Extending: a layer kind is one function in :data:`LAYER_KINDS` (``flow -> flow``), a
synaptic kind one in :data:`SYNAPSES`, a neuron kind one in :data:`NEURONS`. The compiler's
coverage kinds (axonal delays, dense_rec, graded-spike CUBA, average, bias-driven input) are
:mod:`compiler.engine.kinds`, registered into these tables when :mod:`compiler.engine` is
imported.
"""
from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass, field
from typing import Iterator, Optional

import numpy as np
import torch

from compiler import numeric
from compiler.forward import SDNNState, check_no_reset
from compiler.ir import layers
from qblif_lava import reference

F32_EXACT = 2 ** 24          # integers up to this magnitude are exact in float32
F64_EXACT = 2 ** 53
NARROW_INPUT = 2 ** 17       # |a| below this: (a << 6) < 2^23, u stays 24-bit
COMPARE_MAX_K = 8            # burst by K compares up to this K, else a floor division


# ------------------------------------------------------------------ integer helpers

def wrap32(x: torch.Tensor) -> torch.Tensor:
    """An int64 tensor -> int64 values of numpy's cast to int32 (two's complement wrap)."""
    return ((x + 2 ** 31) & 0xFFFFFFFF) - 2 ** 31


def signed_clamp24(x: torch.Tensor) -> torch.Tensor:
    """Lava ``Conv``'s 24-bit signed wrap (:func:`compiler.numeric.signed_clamp`), any int dtype
    whose values plus 2^23 do not overflow."""
    return ((x + 2 ** 23) & 0xFFFFFF) - 2 ** 23


def rtz12(x: torch.Tensor) -> torch.Tensor:
    """``sign(x) * (|x| >> 12)`` (:func:`qblif_lava.reference.rtz_shift`), int64."""
    return torch.div(x, reference.DECAY_UNITY, rounding_mode="trunc")


def _internal(value, shape):
    """A scalar stays an int; a file-order array of ``shape`` -> channels-last int64 array."""
    if np.ndim(value) == 0:
        return int(value)
    a = np.broadcast_to(np.asarray(value, np.int64), tuple(shape))
    return np.ascontiguousarray(a.transpose(1, 2, 0)) if len(shape) == 3 else a.copy()


def inner_shape(shape) -> tuple:
    """The engine's layout of a file-order shape: ``(C, H, W)`` -> ``(H, W, C)``."""
    shape = tuple(int(s) for s in shape)
    return (shape[1], shape[2], shape[0]) if len(shape) == 3 else shape


def _to_file_order(x: torch.Tensor, nlead: int) -> torch.Tensor:
    """Channels-last ``(..., H, W, C)`` -> file order ``(..., C, H, W)`` (3-D layers only)."""
    if x.dim() - nlead == 3:
        return x.permute(*range(nlead), nlead + 2, nlead, nlead + 1)
    return x


# ------------------------------------------------------------------ synapses

def _gemm_dtype(bound: int):
    """The float type whose matrix products are exact for sums of absolute value <= bound;
    None: use int64."""
    if bound <= F32_EXACT:
        return torch.float32
    if bound <= F64_EXACT:
        return torch.float64
    return None


@dataclass
class Synapse:
    """A prepared synaptic layer. ``weight``: channels-last matrix ``(fan_in, out)`` (dense:
    ``(in, out)``); ``abs_sum``: max over outputs of ``sum |w|`` (python int)."""
    ly: object
    weight: np.ndarray
    abs_sum: int
    cache: dict = field(default_factory=dict)

    def w(self, dtype, device):
        key = (dtype, str(device))
        if key not in self.cache:
            self.cache[key] = torch.as_tensor(self.weight).to(device=device, dtype=dtype)
        return self.cache[key]


def _matmul(syn: Synapse, x: torch.Tensor, xmax: int) -> torch.Tensor:
    """Exact ``x @ W`` of integers, as float32/float64 (integer values) where the bound
    allows, else int64."""
    dtype = _gemm_dtype(syn.abs_sum * xmax)
    if dtype is None:                     # beyond 2^53: int64 on the CPU (CUDA has none)
        y = x.cpu().long() @ syn.w(torch.int64, "cpu")
        return y.to(x.device)
    return x.to(dtype) @ syn.w(dtype, x.device)


def as_int32(raw: torch.Tensor, wrap: int) -> torch.Tensor:
    """A synapse's exact integer sums (any dtype) -> int32 after its wrap: 24 (Lava
    ``Conv``'s signed 24 bits), 32 (int32, Lava ``Dense``) or 0 (the bound rules it out)."""
    if wrap == 0:
        return raw if raw.dtype == torch.int32 else raw.int()
    x = raw.long()
    return (signed_clamp24(x) if wrap == 24 else wrap32(x)).int()


def dense_synapse(ly, weight) -> Synapse:
    """A dense synapse of ``weight`` ``(out, in)`` (file order; the layer's own, recurrent or
    imaginary weights) as ``x @ W.T``."""
    w = np.asarray(weight, np.int64)
    return Synapse(ly, np.ascontiguousarray(w.T), int(np.abs(w).sum(axis=1).max(initial=0)))


def prepare_dense(ly) -> Synapse:
    return dense_synapse(ly, ly.weight)


def dense(syn: Synapse, x: torch.Tensor, xmax: int):
    """``x (M, in)`` -> ``(W @ x (M, out), wrap)``: to be wrapped to int32 (Lava ``Dense``)."""
    y = _matmul(syn, x.reshape(x.shape[0], -1), xmax)
    return y, (32 if syn.abs_sum * xmax >= 2 ** 31 else 0)


def prepare_conv(ly) -> Synapse:
    w = np.asarray(ly.weight, np.int64)                         # (C_out, C_in/g, kH, kW)
    c_out, cg, kh, kw = w.shape
    g = int(ly.groups)
    # per group: (kH, kW, Cg, og) -> rows in the im2col order (tap-major, channel-minor)
    wg = w.reshape(g, c_out // g, cg, kh, kw).transpose(0, 3, 4, 2, 1).reshape(g, kh * kw * cg, -1)
    return Synapse(ly, np.ascontiguousarray(wg), int(np.abs(w).reshape(c_out, -1).sum(1).max()))


def _taps(x: torch.Tensor, ly, k_hw, out_hw) -> list:
    """Strided views of channels-last ``x (M, H, W, C)`` for every kernel tap, each
    ``(M, oH, oW, C)``: zero padding by ``ly.padding`` (and on the far side as needed)."""
    (ph, pw), (sh, sw), (dh, dw) = ly.padding, ly.stride, ly.dilation
    (kh, kw), (oh, ow) = k_hw, out_hw
    h, w = x.shape[1], x.shape[2]
    need_h, need_w = (oh - 1) * sh + (kh - 1) * dh + 1, (ow - 1) * sw + (kw - 1) * dw + 1
    bottom, right = max(0, need_h - h - ph), max(0, need_w - w - pw)
    if ph or pw or bottom or right:
        x = torch.nn.functional.pad(x, (0, 0, pw, right, ph, bottom))
    return [x[:, a * dh:a * dh + (oh - 1) * sh + 1:sh, b * dw:b * dw + (ow - 1) * sw + 1:sw]
            for a in range(kh) for b in range(kw)]


#: convolution backends whose float sums are plain dot products (exact under the bound):
#: oneDNN's direct algorithm (the only one PyTorch asks it for) and im2col + GEMM
EXACT_CONV_BACKENDS = ("Mkldnn", "Slow2d")


def _library_conv(syn: Synapse, x: torch.Tensor, dtype) -> Optional[torch.Tensor]:
    """``torch.nn.functional.conv2d`` on the CPU where PyTorch selects an exact backend
    (checked per call; never NNPACK, whose Winograd / FFT transforms round); else None."""
    ly = syn.ly
    if x.device.type != "cpu":        # cuDNN may pick Winograd or FFT
        return None
    (ph, pw), (sh, sw), (dh, dw) = ly.padding, ly.stride, ly.dilation
    kh, kw = ly.weight.shape[2:]
    h, w = x.shape[1], x.shape[2]
    if ((h + 2 * ph - dh * (kh - 1) - 1) // sh + 1, (w + 2 * pw - dw * (kw - 1) - 1) // sw + 1) \
            != (int(ly.shape[1]), int(ly.shape[2])):
        return None
    key = ("oihw", dtype)
    if key not in syn.cache:
        syn.cache[key] = torch.as_tensor(np.asarray(ly.weight, np.int64)).to(dtype)
    wt = syn.cache[key]
    xin = x.to(dtype).permute(0, 3, 1, 2)                      # channels-last NCHW view
    args = ([sh, sw], [ph, pw], [dh, dw], False, [0, 0], int(ly.groups))
    with torch.backends.nnpack.flags(enabled=False):
        try:
            backend = torch._C._select_conv_backend(xin, wt, None, *args, None)
        except (AttributeError, RuntimeError, TypeError):
            return None
        if getattr(backend, "name", str(backend).rsplit(".", 1)[-1]) not in EXACT_CONV_BACKENDS:
            return None
        y = torch.nn.functional.conv2d(xin, wt, None, (sh, sw), (ph, pw), (dh, dw),
                                       int(ly.groups))
    return y.permute(0, 2, 3, 1)


def conv(syn: Synapse, x: torch.Tensor, xmax: int):
    """``x (M, H, W, C_in)`` -> ``(sums (M, oH, oW, C_out), wrap)``: 24-bit (Lava ``Conv``).
    PyTorch's CPU convolution where its backend is exact, else im2col + one matrix product."""
    ly = syn.ly
    g, rows, og = syn.weight.shape
    oh, ow = int(ly.shape[1]), int(ly.shape[2])
    kh, kw = syn.ly.weight.shape[2:]
    bound = syn.abs_sum * xmax
    dtype = _gemm_dtype(bound) or torch.int64
    wrap = 24 if bound >= 2 ** 23 else 0
    if dtype != torch.int64:
        y = _library_conv(syn, x, dtype)
        if y is not None:
            return y, wrap
    dev = x.device
    if dtype == torch.int64:
        x = x.cpu()
    taps = _taps(x.to(dtype), ly, (kh, kw), (oh, ow))
    m = x.shape[0]
    cols = torch.stack(taps, dim=3)                              # (M, oH, oW, k, C_in)
    if g == 1:
        y = cols.reshape(m * oh * ow, rows) @ syn.w(dtype, cols.device)[0]
    else:
        cg = rows // (kh * kw)
        cols = cols.reshape(m * oh * ow, kh * kw, g, cg).permute(2, 0, 1, 3)
        y = torch.bmm(cols.reshape(g, m * oh * ow, rows), syn.w(dtype, cols.device))
        y = y.permute(1, 0, 2)
    return y.reshape(m, oh, ow, g * og).to(dev), wrap


def prepare_pool(ly) -> Synapse:
    k = np.asarray(ly.weight, np.int64).reshape(np.shape(ly.weight)[-2:])
    return Synapse(ly, k, int(np.abs(k).sum()))


def pool(syn: Synapse, x: torch.Tensor, xmax: int):
    """Per-channel weighted sum pooling as strided adds: ``(M, H, W, C)`` -> ``(sums
    (M, oH, oW, C), wrap)``: 24-bit (Lava ``Conv``, as :func:`compiler.numeric.pool2d`)."""
    ly = syn.ly
    bound = syn.abs_sum * xmax
    dtype = torch.int32 if bound < 2 ** 31 else torch.int64
    k = syn.weight
    ws = [int(v) for v in k.reshape(-1)]
    uniform = len(set(ws)) == 1
    # uint8 counts are added into the int32 sums as they are (no conversion pass)
    src = x if (uniform and x.dtype == torch.uint8 and dtype == torch.int32) else x.to(dtype)
    taps = _taps(src, ly, k.shape, (int(ly.shape[1]), int(ly.shape[2])))
    if uniform:                             # add the taps, scale once
        y = taps[0].to(dtype, copy=True)
        for t in taps[1:]:
            y += t
        if ws[0] != 1:
            y *= ws[0]
    else:
        y = taps[0] * ws[0]
        for t, wv in zip(taps[1:], ws[1:]):
            if wv:
                y.add_(t, alpha=wv)
    return y, (24 if bound >= 2 ** 23 else 0)


#: synaptic kind -> (prepare(ly) -> Synapse, apply(Synapse, x (M, *in), xmax) -> (sums
#: (M, *out) of exact integers in any dtype, wrap for :func:`as_int32`))
SYNAPSES: dict = {"dense": (prepare_dense, dense), "conv": (prepare_conv, conv),
                  "pool": (prepare_pool, pool)}


# ------------------------------------------------------------------ neurons

@dataclass
class QBLIFParams:
    """A QB-LIF (or CUBA: K = 1, zero reset) population, channels-last: ``cu = 4095 - du``,
    ``cv = 4096 - dv`` (decay multipliers, units 2^-12); ``theta = vth << 6`` and ``bias``
    (state units) ints or int32 tensors of the inner shape."""
    cu: int
    cv: int
    theta: object
    bias: object
    bias_abs: int
    k: int
    subtract: bool
    theta_max: int

    @classmethod
    def of(cls, ly) -> "QBLIFParams":
        n = ly.neuron
        theta = np.left_shift(np.asarray(n.vth, np.int64), reference.VTH_SHIFT)
        bias = reference.effective_bias(n.bias_mant, n.bias_exp).astype(np.int64)
        shape = tuple(ly.shape)
        return cls(cu=reference.DECAY_UNITY - (int(n.du) + 1), cv=reference.DECAY_UNITY - int(n.dv),
                   theta=_internal(theta, shape), bias=_internal(bias, shape),
                   bias_abs=int(np.abs(bias).max()), k=int(n.max_burst),
                   subtract=n.reset_mode == "subtract", theta_max=int(theta.max()))

    def on(self, device):
        """A copy with the array parameters as int32 tensors on ``device``."""
        def t(v):
            return v if isinstance(v, int) else torch.as_tensor(v, dtype=torch.int32, device=device)
        return QBLIFParams(self.cu, self.cv, t(self.theta), t(self.bias), self.bias_abs, self.k,
                           self.subtract, self.theta_max)


def _burst_and_reset(p: QBLIFParams, v: torch.Tensor):
    """Spec 1.4-1.5 on a clipped int32 ``v``: ``n = 0 if v <= theta else min(K, (v-1)//theta)``,
    then the reset. Returns ``(n int32, v int32)``."""
    theta = p.theta
    if p.k <= COMPARE_MAX_K:      # n = sum_j [v > j*theta] (j*theta <= 8 * 2^23: no overflow)
        n = (v > theta).int()
        for j in range(2, p.k + 1):
            n += v > j * theta
    else:
        n = torch.div(v - 1, theta, rounding_mode="floor").clamp_(0, p.k)
    if p.subtract:
        v = v - n * theta
    else:
        v = v.masked_fill(n > 0, 0)
    return n, v


def qblif_step_wide(p: QBLIFParams, u, v, a):
    """One step, any int32 input: the reference's int32 casts and wraps, mirrored in int64."""
    dec = wrap32(rtz12(u.long() * p.cu))
    total = wrap32(dec + wrap32(a.long() << reference.ACT_SHIFT))
    m = reference.MAX_UV
    w = torch.where(total > m, total - 2 * m, total)
    u = torch.where(w <= -m, total + 2 * m, w)
    dv = wrap32(rtz12(v.long() * p.cv))
    v = wrap32(dv + u + p.bias).clamp_(reference.V_MIN, reference.V_MAX).int()
    n, v = _burst_and_reset(p, v)
    return u.int(), v, n


def qblif_step_narrow(p: QBLIFParams, u, v, a):
    """One step for ``|a| < 2^17``, ``|bias| < 2^24`` (so ``|u| <= 2^23``, no int32 overflow):
    int32 with fast paths for ``du = 4095`` (u = a << 6) and ``dv = 0`` (no voltage decay)."""
    a6 = a * (1 << reference.ACT_SHIFT)
    if p.cu == 0:
        u = a6
    else:
        u = rtz12(u.long() * p.cu).int() + a6
        m = reference.MAX_UV
        u = torch.where(u > m, u - 2 * m, u)
        u = torch.where(u <= -m, u + 2 * m, u)
    if p.cv == reference.DECAY_UNITY:
        v = v + u
    else:
        v = rtz12(v.long() * p.cv).int() + u
    if p.bias_abs:
        v += p.bias
    v.clamp_(reference.V_MIN, reference.V_MAX)
    n, v = _burst_and_reset(p, v)
    return u, v, n


def is_narrow(p: QBLIFParams, raw: torch.Tensor, bound: Optional[int]) -> bool:
    """Whether the narrow int32 step is exact for this input: ``|a| < 2^17`` (by the bound on
    the synaptic sums, else measured before the wrap) and ``|bias| < 2^24``."""
    if p.bias_abs >= F32_EXACT:
        return False
    return (bound is not None and bound < NARROW_INPUT) or _bound(raw) < NARROW_INPUT


def qblif_scan(p: QBLIFParams, a: torch.Tensor, static: bool, steps: int, record_uv: bool,
               narrow: bool = False) -> dict:
    """Run T steps from zero state. ``a``: int32 ``(B, *shape)`` (static: the same input on
    every step) or ``(B, T, *shape)``; ``narrow``: :func:`is_narrow` holds. Returns
    ``{"n": (B, T, *shape) int32}`` (+ ``u``, ``v``)."""
    shape = a.shape[1:] if static else a.shape[2:]
    b = a.shape[0]
    stepf = qblif_step_narrow if narrow else qblif_step_wide
    u = torch.zeros((b,) + tuple(shape), dtype=torch.int32, device=a.device)
    v = torch.zeros_like(u)
    out = {"n": torch.empty((b, steps) + tuple(shape), dtype=torch.int32, device=a.device)}
    if record_uv:
        out["u"], out["v"] = torch.empty_like(out["n"]), torch.empty_like(out["n"])
    for t in range(steps):
        u, v, n = stepf(p, u, v, a if static else a[:, t])
        out["n"][:, t] = n
        if record_uv:
            out["u"][:, t], out["v"][:, t] = u, v
    return out


class SDNNTorch(SDNNState):
    """Lava's sigma-delta state (:class:`compiler.forward.SDNNState`, whose ``step`` it runs)
    in torch int64, channels-last; it carries on across chunks."""

    def __init__(self, ly, st, device):
        shape = tuple(ly.shape)
        self.proc = ly.proc
        self.vth = int(st.vth)
        self.bias = torch.as_tensor(_internal(st.bias, shape), dtype=torch.int64, device=device) \
            if np.ndim(st.bias) else int(st.bias)

        def t(x):
            return torch.as_tensor(_internal(np.broadcast_to(x, shape), shape), dtype=torch.int64,
                                   device=device)
        self.sigma, self.act, self.residue = t(st.sigma), t(st.act), t(st.residue)

    @staticmethod
    def _int64(a):
        return a.long()

    def scan(self, a: torch.Tensor, static: bool, steps: int) -> torch.Tensor:
        """Every sample's T steps in order: ``a`` int ``(B, [T,] *shape)`` -> int32 ``(B, T, *shape)``."""
        b = a.shape[0]
        shape = a.shape[1:] if static else a.shape[2:]
        out = torch.empty((b, steps) + tuple(shape), dtype=torch.int32, device=a.device)
        a = a.long()
        for s in range(b):
            for t in range(steps):
                out[s, t] = wrap32(self.step(a[s] if static else a[s, t])).int()
        return out


# ------------------------------------------------------------------ layers

@dataclass
class Flow:
    """What flows out of a layer for one chunk: ``x`` int ``(B, *inner)`` if ``static`` (the
    same on every step) else ``(B, T, *inner)``; ``xmax`` bounds ``|x|`` (python int)."""
    x: torch.Tensor
    static: bool
    xmax: int


@dataclass
class Ctx:
    """Per-run context handed to the layer functions."""
    engine: "ExactEngine"
    steps: int
    record_uv: bool
    record: set
    out: dict
    sdnn: dict
    layer_steps: dict = field(default_factory=dict)
    run_state: dict = field(default_factory=dict)    # carried from chunk to chunk of a run


def _bound(x: torch.Tensor) -> int:
    return 0 if x.numel() == 0 else max(int(x.max()), -int(x.min()))


def _neuron(ctx: Ctx, ly, raw: torch.Tensor, wrap: int, static: bool,
            bound: Optional[int] = None) -> Flow:
    """Run ``ly``'s neuron on its synaptic sums ``raw`` (wrapped by ``wrap``, see
    :func:`as_int32`; ``|raw| <= bound`` if given); record; the flow to the next layer."""
    eng = ctx.engine
    steps = ctx.layer_steps.get(ly.index, ctx.steps)
    if ly.neuron.kind == "SDNN":
        if steps != ctx.steps:
            raise ValueError("SDNN layers run every step (their state streams on)")
        counts = ctx.sdnn[ly.index].scan(as_int32(raw, wrap), static, steps)
        flow = Flow(counts, False, _bound(counts))
        res = {"n": counts}
    else:
        p = eng.params(ly, numpy=eng.use_native)
        narrow = is_narrow(p, raw, bound)
        if eng.use_native:
            from compiler.engine import native
            res = native.qblif_scan(p, raw, static, wrap, steps, ctx.record_uv, eng.threads,
                                    narrow)
        else:
            res = qblif_scan(p, as_int32(raw, wrap), static, steps, ctx.record_uv, narrow)
        flow = Flow(res["n"], False, int(ly.neuron.max_burst))
    _record(ctx, ly, res)
    return flow


def _record(ctx: Ctx, ly, res: dict) -> None:
    if ly.index in ctx.record:
        ctx.out[ly.index] = res["n"]
        if ctx.record_uv and "u" in res:
            ctx.out[("u", ly.index)], ctx.out[("v", ly.index)] = res["u"], res["v"]


def _fused_pool(ctx: Ctx, ly, syn: Synapse, flow: Flow) -> Optional[Flow]:
    """A pooling layer's synapse and QB-LIF neuron in one native pass, where the kernel's fast
    variant applies (uniform kernel, stride = kernel, no padding, dilation 1; ``du = 4095``,
    ``dv = 0``; the bound proves ``|a| < 2^17`` and no wrap); else None."""
    eng = ctx.engine
    if not eng.use_native or ly.kind != "pool" or ly.neuron.kind == "SDNN" or \
            flow.x.dtype not in (torch.uint8, torch.int32):
        return None
    k = syn.weight
    (kh, kw), (oh, ow) = k.shape, (int(ly.shape[1]), int(ly.shape[2]))
    if len(set(k.reshape(-1).tolist())) != 1 or tuple(ly.stride) != (kh, kw) or \
            tuple(ly.padding) != (0, 0) or tuple(ly.dilation) != (1, 1) or \
            oh * kh > flow.x.shape[-3] or ow * kw > flow.x.shape[-2]:
        return None
    p = eng.params(ly, numpy=True)
    if p.cu != 0 or p.cv != reference.DECAY_UNITY or p.bias_abs >= F32_EXACT or \
            syn.abs_sum * flow.xmax >= NARROW_INPUT:
        return None
    from compiler.engine import native
    res = native.qblif_scan_pool(p, flow.x, flow.static, (kh, kw), (oh, ow), int(k.flat[0]),
                                 ctx.layer_steps.get(ly.index, ctx.steps), ctx.record_uv,
                                 eng.threads)
    _record(ctx, ly, res)
    return Flow(res["n"], False, int(ly.neuron.max_burst))


def layer_input(ctx: Ctx, ly, flow: Flow) -> Flow:
    """Input layer: nothing, or an SDNN delta encoder (depth 0)."""
    if ly.neuron is None:
        return flow
    return _neuron(ctx, ly, flow.x, 0, flow.static)


def layer_flatten(ctx: Ctx, ly, flow: Flow) -> Flow:
    """Flatten in file order (``C, H, W``), as NetX."""
    lead = 1 if flow.static else 2
    x = _to_file_order(flow.x, lead)
    return Flow(x.reshape(x.shape[:lead] + (-1,)), flow.static, flow.xmax)


def layer_synaptic(ctx: Ctx, ly, flow: Flow) -> Flow:
    """Dense / conv / pool: the synapse over every (sample, step) of the chunk, then the neuron."""
    syn = ctx.engine.synapse(ly)
    apply = SYNAPSES[ly.kind][1]
    if ly.index in ctx.layer_steps and not flow.static:    # only the first k steps
        flow = Flow(flow.x[:, :ctx.layer_steps[ly.index]], False, flow.xmax)
    fused = _fused_pool(ctx, ly, syn, flow)
    if fused is not None:
        return fused
    lead = flow.x.shape[:1] if flow.static else flow.x.shape[:2]
    x = flow.x.reshape((-1,) + tuple(flow.x.shape[len(lead):]))
    raw, wrap = apply(syn, x, flow.xmax)
    raw = raw.reshape(tuple(lead) + tuple(raw.shape[1:]))
    return _neuron(ctx, ly, raw, wrap, flow.static, syn.abs_sum * flow.xmax)


#: layer kind -> function ``(ctx, layer, flow) -> flow``
LAYER_KINDS: dict = {"input": layer_input, "flatten": layer_flatten, "dense": layer_synaptic,
                     "conv": layer_synaptic, "pool": layer_synaptic}

#: neuron kinds the engine runs (CUBA and LOIHI are QB-LIF with K = 1, zero reset; ALIF and
#: RF have no reset and run on the timeline only, :mod:`compiler.engine.timeline`)
NEURONS = ("QBLIF", "CUBA", "LOIHI", "SDNN", "ALIF", "RF")


def _warmup(ly, a_in, steps):
    """Outputs of ``ly`` on global steps ``1..len(a_in)`` (before its first window), and the
    SDNN state it enters its window with (None for QB-LIF/CUBA, which reset there): what the
    streamed Lava pipeline computes before the layer's first window (numpy, exact)."""
    n, outs = ly.neuron, []
    if n.kind == "SDNN":
        st = SDNNState(ly)
        return [st.step(a) for a in a_in], st
    st = reference.QBLIFState.zeros(ly.shape)
    for k, a in enumerate(a_in, start=1):
        if (k - ly.reset_offset) % steps == 0:
            st = reference.QBLIFState.zeros(ly.shape)
        outs.append(reference.step(st, a, du=n.du, dv=n.dv, vth=n.vth, bias_mant=n.bias_mant,
                                   bias_exp=n.bias_exp, max_burst=n.max_burst,
                                   reset_mode=n.reset_mode).astype(np.int64))
    return outs, None


#: functions ``layer -> reason or None``: combinations of features a kind module refuses
REFUSALS: list = []


def _unsupported(ly) -> Optional[str]:
    """A feature of ``ly`` the engine does not model (run in Lava and the numpy oracle
    only), or None. The coverage kinds (docs/coverage.md) are :mod:`compiler.engine.kinds`."""
    for refuse in REFUSALS:
        why = refuse(ly)
        if why:
            return why
    return None


# ------------------------------------------------------------------ the engine

@contextlib.contextmanager
def _exact_float_mode(threads: Optional[int]):
    """torch threads for the run; no TF32 on CUDA (its products are not exact)."""
    old_threads = torch.get_num_threads()
    old_tf32 = torch.backends.cuda.matmul.allow_tf32
    old_prec = torch.get_float32_matmul_precision()
    try:
        if threads:
            torch.set_num_threads(int(threads))
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.set_float32_matmul_precision("highest")
        yield
    finally:
        torch.set_num_threads(old_threads)
        torch.backends.cuda.matmul.allow_tf32 = old_tf32
        torch.set_float32_matmul_precision(old_prec)


def default_threads() -> int:
    """Every core this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:      # pragma: no cover
        return os.cpu_count() or 1


class ExactEngine:
    """The batched exact engine of a compiled IR (``net.ir``).

    device: ``"cpu"`` (default), ``"cuda"`` or a ``torch.device``. threads: torch CPU threads
    during a run (default: every core). batch_size: samples per chunk (default: about 2^22
    neuron-steps of the widest layer per chunk).
    """

    def __init__(self, ir, device="cpu", threads: Optional[int] = None,
                 batch_size: Optional[int] = None, native: Optional[bool] = None):
        self.ir = ir
        self.device = torch.device(device)
        if native is None or native:     # the C kernel of QB-LIF scans (CPU only)
            from compiler.engine.native import library
            ok = self.device.type == "cpu" and library() is not None
            if native and not ok:
                raise RuntimeError("the native QB-LIF kernel is not available "
                                   "(CPU device, a C compiler, QBLIF_NATIVE unset)")
            native = ok
        self.use_native = bool(native)
        self.threads = default_threads() if threads is None else int(threads)
        self.batch_size = batch_size
        self.layers = layers(ir)
        for ly in self.layers:
            if ly.kind not in LAYER_KINDS:
                raise NotImplementedError(f"layer {ly.index}: the exact engine has no "
                                          f"'{ly.kind}' layers")
            if ly.neuron is not None and ly.neuron.kind not in NEURONS:
                raise NotImplementedError(f"layer {ly.index}: the exact engine has no "
                                          f"'{ly.neuron.kind}' neurons")
            why = _unsupported(ly)
            if why:
                raise NotImplementedError(f"layer {ly.index}: the exact engine has no {why} "
                                          "yet (run it with engine='lava')")
        self._syn, self._params = {}, {}

    # prepared per-layer data (lazily, cached) ------------------------------
    def synapse(self, ly) -> Synapse:
        if ly.index not in self._syn:
            self._syn[ly.index] = SYNAPSES[ly.kind][0](ly)
        return self._syn[ly.index]

    def params(self, ly, numpy: bool = False) -> QBLIFParams:
        """The layer's neuron parameters (numpy arrays, or int32 tensors on the device)."""
        key = (ly.index, numpy)
        if key not in self._params:
            p = QBLIFParams.of(ly)
            self._params[key] = p if numpy else p.on(self.device)
        return self._params[key]

    @property
    def input_shape(self) -> tuple:
        return tuple(self.ir.graph["input_shape"])

    @property
    def stateful(self) -> bool:
        return any(ly.neuron is not None and ly.neuron.kind == "SDNN" for ly in self.layers)

    def _sdnn_states(self, steps: int) -> dict:
        """SDNN states after the warm-up steps before each layer's first window (as the oracle)."""
        states, warm = {}, []
        for ly in self.layers:
            if ly.kind == "input":
                if ly.neuron is not None:
                    states[ly.index] = SDNNTorch(ly, SDNNState(ly), self.device)
                continue
            if ly.kind == "flatten":
                warm = [w.reshape(-1) for w in warm]
                continue
            if ly.kind == "average":         # a readout: no state, last
                continue
            a_warm = [np.zeros(ly.shape, np.int64)] + \
                [numeric.synapse(ly, w).reshape(ly.shape) for w in warm]
            warm, sd = _warmup(ly, a_warm, steps)
            if sd is not None:
                states[ly.index] = SDNNTorch(ly, sd, self.device)
        return states

    def default_batch(self, steps: int) -> int:
        """Samples per chunk: about 2^22 neuron-steps of the widest layer on the CPU (the
        chunk's tensors stay in the caches' reach), 2^26 on a GPU."""
        widest = max([ly.size for ly in self.layers if ly.neuron is not None] + [1])
        budget = 1 << (22 if self.device.type == "cpu" else 26)
        return max(1, min(1 << 14, budget // (widest * int(steps))))

    # running ---------------------------------------------------------------
    def chunks(self, frames, steps: int, record_uv: bool = False, layers_to_record=None,
               batch_size: Optional[int] = None, layer_steps: Optional[dict] = None,
               file_order: bool = True, stream: bool = False) -> Iterator:
        """Yield ``(start, {key: tensor})`` per chunk of samples, in order: the chunk's counts
        ``(B, T, *shape)`` int32 on the engine's device, file order (keys as :meth:`run`).
        ``layer_steps``: ``{layer index: k <= T}`` to run only the first k steps of a QB-LIF
        layer's window (its counts are then ``(B, k, *shape)``; later layers see k steps).
        ``file_order=False``: the engine's own contiguous layout (3-D layers ``(H, W, C)``) and
        count dtype (uint8 from the native kernel, else int32). ``stream``: frames are
        ``(S, T_in, *input_shape)``, one input per step (:func:`compiler.forward.input_steps`)."""
        steps = int(steps)
        if steps < 1:
            raise ValueError(f"steps_per_sample={steps} must be >= 1")
        frames = np.asarray(frames)
        for ly in self.layers:       # ALIF / RF: no reset, no per-sample windows
            check_no_reset(ly, (steps, ly.reset_offset))
        if stream:
            if frames.ndim < 2 or frames.shape[2:] != self.input_shape:
                raise ValueError(f"an input stream has shape {frames.shape}, expected "
                                 f"(samples, steps, {', '.join(map(str, self.input_shape))})")
        elif frames.shape[1:] != self.input_shape:
            raise ValueError(f"input frames have shape {frames.shape}, expected "
                             f"(samples, {', '.join(map(str, self.input_shape))})")
        if record_uv and self.stateful:
            raise NotImplementedError("SDNN layers have no u, v states to record")
        record = {ly.index for ly in self.layers if ly.neuron is not None or ly.kind == "average"}
        if layers_to_record is not None:
            record &= {int(i) for i in layers_to_record}
        sdnn = self._sdnn_states(steps) if self.stateful else {}
        bs = int(batch_size or self.batch_size or self.default_batch(steps))
        xmax_all = int(np.abs(frames).max(initial=0))
        run_state: dict = {}
        with _exact_float_mode(self.threads), torch.no_grad():
            for start in range(0, len(frames), bs):
                fr = frames[start:start + bs]
                if stream:        # (B, T, *shape): the source's value on every step
                    from compiler.forward import input_steps
                    fr = input_steps(fr, steps, True)
                x = torch.as_tensor(np.ascontiguousarray(fr), device=self.device).to(torch.int32)
                if x.dim() == 4 + bool(stream):
                    x = x.permute(*range(x.dim() - 3), x.dim() - 2, x.dim() - 1,
                                  x.dim() - 3).contiguous()
                out = {}
                ctx = Ctx(self, steps, record_uv, record, out, sdnn, dict(layer_steps or {}),
                          run_state)
                flow = Flow(x, not stream, xmax_all)
                for ly in self.layers:
                    flow = LAYER_KINDS[ly.kind](ctx, ly, flow)
                # counts leave as int32 (the native kernel's are uint8 inside)
                yield start, ({k: _to_file_order(v, 2).to(torch.int32) for k, v in out.items()}
                              if file_order else out)

    def run(self, frames, steps: int, record_uv: bool = False, layers_to_record=None,
            batch_size: Optional[int] = None, progress: bool = False, *, stream: bool = False,
            reset: str = "sample", reset_interval=None, reset_offset: int = 0,
            timeline: bool = False) -> dict:
        """``{layer index: counts}`` for every neuron layer (or ``layers_to_record``), counts
        int32 numpy ``(S, T, *shape)``, file order, as :func:`compiler.forward.forward` and
        ``CompiledNetwork.run``; with ``record_uv`` also ``("u", i)``, ``("v", i)``.
        Statistics of the run in ``self.last_run`` (``samples``, ``steps``, ``wall_s``,
        ``samples_per_s``, ``device``, ``threads``).

        Run modes, as :func:`compiler.forward.simulate`: ``stream`` (frames ``(S, T_in,
        *input_shape)``), ``reset`` / ``reset_interval`` / ``reset_offset``
        (:func:`compiler.passes.plan.reset_schedule`); ``timeline``: every layer's whole run
        ``{i: (S*T + depth, *shape)}`` instead of the windows. Any reset but ``"sample"``,
        ``timeline`` and ALIF / RF layers run on the global timeline
        (:mod:`compiler.engine.timeline`), the rest in per-sample batches."""
        from tqdm.auto import tqdm
        from compiler.engine import timeline as tl
        frames = np.asarray(frames)
        t0 = time.perf_counter()
        parts: dict = {}
        whole = tl.needs_timeline(self, reset, timeline)
        if whole:                                       # the whole run as one sequence
            parts = {k: [v] for k, v in tl.run(
                self, frames, steps, stream=bool(stream), reset=reset,
                reset_interval=reset_interval, reset_offset=reset_offset, record_uv=record_uv,
                layers_to_record=layers_to_record, timeline=timeline).items()}
        with tqdm(total=len(frames), unit="sample", desc="exact", disable=not progress,
                  leave=False) as bar:
            for start, chunk in self.chunks(frames, steps, record_uv, layers_to_record,
                                            batch_size, stream=bool(stream)) if not whole else ():
                for k, v in chunk.items():
                    parts.setdefault(k, []).append(v.cpu().numpy())
                bar.update(next(iter(chunk.values())).shape[0] if chunk else 0)
        out = {k: np.ascontiguousarray(np.concatenate(v)) for k, v in parts.items()}
        wall = time.perf_counter() - t0
        self.last_run = dict(samples=len(frames), steps=int(steps), wall_s=wall,
                             samples_per_s=len(frames) / wall if wall > 0 else float("inf"),
                             device=str(self.device), threads=self.threads)
        return out


def run_exact(ir, frames, steps: int, device="cpu", **kwargs) -> dict:
    """One-shot :meth:`ExactEngine.run`."""
    return ExactEngine(ir, device=device).run(frames, steps, **kwargs)
