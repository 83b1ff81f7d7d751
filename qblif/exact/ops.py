"""The exact engine's arithmetic, one layer at a time: integer wraps, exact synapse products
(dense, conv, pool), the QB-LIF / CUBA neuron steps and scans, Lava's sigma-delta step, and the
base layer functions ``(ctx, layer, flow) -> flow``. :mod:`qblif.exact.engine` runs them over a
network (see its docstring for the exactness argument); :mod:`qblif.exact.kinds` and
:mod:`qblif.exact.timeline` build the coverage kinds and the global timeline on them.

Shapes: a flow holds ``(B*T, *inner_shape)`` channels-last values; ``xmax`` bounds their
absolute value. Units: synaptic sums are in weight units << weight exponent, as Lava's
``Dense``/``Conv`` hand them to the neuron (24-bit wraps, :mod:`qblif.core.numeric`).
"""
from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from typing import Optional

import numpy as np
import torch


from qblif.exact.oracle import SDNNState
from qblif.core import reference

from qblif.core.constants import F32_EXACT, F64_EXACT  # noqa: E402
NARROW_INPUT = 2 ** 17       # |a| below this: (a << 6) < 2^23, u stays 24-bit
COMPARE_MAX_K = 8            # burst by K compares up to this K, else a floor division


# ------------------------------------------------------------------ integer helpers

def wrap32(x: torch.Tensor) -> torch.Tensor:
    """An int64 tensor -> int64 values of numpy's cast to int32 (two's complement wrap)."""
    return ((x + 2 ** 31) & 0xFFFFFFFF) - 2 ** 31


def signed_clamp24(x: torch.Tensor) -> torch.Tensor:
    """Lava ``Conv``'s 24-bit signed wrap (:func:`qblif.core.numeric.signed_clamp`), any int dtype
    whose values plus 2^23 do not overflow."""
    return ((x + 2 ** 23) & 0xFFFFFF) - 2 ** 23


def rtz12(x: torch.Tensor) -> torch.Tensor:
    """``sign(x) * (|x| >> 12)`` (:func:`qblif.core.reference.rtz_shift`), int64."""
    return torch.div(x, reference.DECAY_UNITY, rounding_mode="trunc")


def to_internal(value, shape):
    """A scalar stays an int; a file-order array of ``shape`` -> channels-last int64 array."""
    if np.ndim(value) == 0:
        return int(value)
    a = np.broadcast_to(np.asarray(value, np.int64), tuple(shape))
    return np.ascontiguousarray(a.transpose(1, 2, 0)) if len(shape) == 3 else a.copy()


def inner_shape(shape) -> tuple:
    """The engine's layout of a file-order shape: ``(C, H, W)`` -> ``(H, W, C)``."""
    shape = tuple(int(s) for s in shape)
    return (shape[1], shape[2], shape[0]) if len(shape) == 3 else shape


def to_file_order(x: torch.Tensor, nlead: int) -> torch.Tensor:
    """Channels-last ``(..., H, W, C)`` -> file order ``(..., C, H, W)`` (3-D layers only)."""
    if x.dim() - nlead == 3:
        return x.permute(*range(nlead), nlead + 2, nlead, nlead + 1)
    return x


# ------------------------------------------------------------------ synapses

def gemm_dtype(bound: int):
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
    dtype = gemm_dtype(syn.abs_sum * xmax)
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
    dtype = gemm_dtype(bound) or torch.int64
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
    (M, oH, oW, C), wrap)``: 24-bit (Lava ``Conv``, as :func:`qblif.core.numeric.pool2d`)."""
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
                   theta=to_internal(theta, shape), bias=to_internal(bias, shape),
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
    return (bound is not None and bound < NARROW_INPUT) or abs_bound(raw) < NARROW_INPUT


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
    """Lava's sigma-delta state (:class:`qblif.exact.oracle.SDNNState`, whose ``step`` it runs)
    in torch int64, channels-last; it carries on across chunks."""

    def __init__(self, ly, st, device):
        shape = tuple(ly.shape)
        self.proc = ly.proc
        self.vth = int(st.vth)
        self.bias = torch.as_tensor(to_internal(st.bias, shape), dtype=torch.int64, device=device) \
            if np.ndim(st.bias) else int(st.bias)

        def t(x):
            return torch.as_tensor(to_internal(np.broadcast_to(x, shape), shape), dtype=torch.int64,
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
    #: native kernels also count each recorded layer's per-neuron spike sums over the chunk's
    #: samples and all its steps: ``out[("sum", i)]``, int64 of the inner shape
    count_sums: bool = False


def abs_bound(x: torch.Tensor) -> int:
    return 0 if x.numel() == 0 else max(int(x.max()), -int(x.min()))


def run_neuron(ctx: Ctx, ly, raw: torch.Tensor, wrap: int, static: bool,
            bound: Optional[int] = None) -> Flow:
    """Run ``ly``'s neuron on its synaptic sums ``raw`` (wrapped by ``wrap``, see
    :func:`as_int32`; ``|raw| <= bound`` if given); record; the flow to the next layer."""
    eng = ctx.engine
    steps = ctx.layer_steps.get(ly.index, ctx.steps)
    if ly.neuron.kind == "SDNN":
        if steps != ctx.steps:
            raise ValueError("SDNN layers run every step (their state streams on)")
        counts = ctx.sdnn[ly.index].scan(as_int32(raw, wrap), static, steps)
        flow = Flow(counts, False, abs_bound(counts))
        res = {"n": counts}
    else:
        p = eng.params(ly, numpy=eng.use_native)
        narrow = is_narrow(p, raw, bound)
        if eng.use_native:
            from qblif.exact import native
            res = native.qblif_scan(p, raw, static, wrap, steps, ctx.record_uv, eng.threads,
                                    narrow, sums=_sums(ctx, ly))
        else:
            res = qblif_scan(p, as_int32(raw, wrap), static, steps, ctx.record_uv, narrow)
        flow = Flow(res["n"], False, int(ly.neuron.max_burst))
    record_layer(ctx, ly, res)
    return flow


def _sums(ctx: Ctx, ly) -> bool:
    return ctx.count_sums and ly.index in ctx.record


def record_layer(ctx: Ctx, ly, res: dict) -> None:
    if ly.index in ctx.record:
        ctx.out[ly.index] = res["n"]
        if "sums" in res:
            ctx.out[("sum", ly.index)] = res["sums"]
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
    from qblif.exact import native
    res = native.qblif_scan_pool(p, flow.x, flow.static, (kh, kw), (oh, ow), int(k.flat[0]),
                                 ctx.layer_steps.get(ly.index, ctx.steps), ctx.record_uv,
                                 eng.threads, sums=_sums(ctx, ly))
    record_layer(ctx, ly, res)
    return Flow(res["n"], False, int(ly.neuron.max_burst))


#: the sparse fused kernel reads inputs whose layers it is worth it for: spike counts (uint8,
#: mostly zeros) or a fan-in of at most this many values per output (a frame into a small kernel)
SPARSE_FAN_IN = 64


def _fused_conv(ctx: Ctx, ly, syn: Synapse, flow: Flow) -> Optional[Flow]:
    """A conv (groups 1) or dense layer's synapse and QB-LIF neuron in one native pass over its
    sparse input (``conv_scan``: non-zero inputs only, sums in registers, never written out),
    where the kernel's fast variant applies (``du = 4095``, ``dv = 0``, the bound proves
    ``|a| < 2^17`` so float32 sums are exact and nothing wraps) and the input is spike counts
    (uint8) or a small fan-in; else None."""
    eng = ctx.engine
    if not (eng.use_native and eng.sparse) or ly.kind not in ("conv", "dense") or \
            ly.neuron.kind not in ("QBLIF", "CUBA") or \
            flow.x.dtype not in (torch.uint8, torch.int32) or \
            syn.abs_sum * flow.xmax >= NARROW_INPUT:
        return None
    if ly.kind == "conv":
        g, rows, co = syn.weight.shape
        kh, kw = (int(s) for s in np.shape(ly.weight)[2:])
        if g != 1 or kh * kw > 64 or flow.x.dim() != (4 if flow.static else 5):
            return None
        geometry = (kh, kw, *ly.stride, *ly.padding, *ly.dilation, int(ly.shape[1]),
                    int(ly.shape[2]))
        x = flow.x
    else:
        rows = syn.weight.shape[0]
        geometry = (1, 1, 1, 1, 0, 0, 1, 1, 1, 1)
        lead = 1 if flow.static else 2
        if flow.x.dim() != lead + 1:
            return None
        x = flow.x.reshape(tuple(flow.x.shape[:lead]) + (1, 1, -1))
    if flow.x.dtype != torch.uint8 and rows > SPARSE_FAN_IN:
        return None
    p = eng.params(ly, numpy=True)
    if p.cu != 0 or p.cv != reference.DECAY_UNITY or p.bias_abs >= F32_EXACT:
        return None
    from qblif.exact import native
    w = syn.w(torch.float32, "cpu")
    res = native.conv_scan(p, x, flow.static, geometry, w[0] if ly.kind == "conv" else w,
                           ctx.layer_steps.get(ly.index, ctx.steps), ctx.record_uv, eng.threads,
                           sums=_sums(ctx, ly))
    if ly.kind == "dense":        # (B, T, 1, 1, out) -> (B, T, out)
        res = {k: v.reshape(-1) if k == "sums" else v.reshape(tuple(v.shape[:2]) + (-1,))
               for k, v in res.items()}
    record_layer(ctx, ly, res)
    return Flow(res["n"], False, int(ly.neuron.max_burst))


def layer_input(ctx: Ctx, ly, flow: Flow) -> Flow:
    """Input layer: nothing, or an SDNN delta encoder (depth 0)."""
    if ly.neuron is None:
        return flow
    return run_neuron(ctx, ly, flow.x, 0, flow.static)


def layer_flatten(ctx: Ctx, ly, flow: Flow) -> Flow:
    """Flatten in file order (``C, H, W``), as NetX."""
    lead = 1 if flow.static else 2
    x = to_file_order(flow.x, lead)
    return Flow(x.reshape(x.shape[:lead] + (-1,)), flow.static, flow.xmax)


def layer_synaptic(ctx: Ctx, ly, flow: Flow) -> Flow:
    """Dense / conv / pool: the synapse over every (sample, step) of the chunk, then the neuron."""
    syn = ctx.engine.synapse(ly)
    apply = SYNAPSES[ly.kind][1]
    if ly.index in ctx.layer_steps and not flow.static:    # only the first k steps
        flow = Flow(flow.x[:, :ctx.layer_steps[ly.index]], False, flow.xmax)
    fused = _fused_pool(ctx, ly, syn, flow) or _fused_conv(ctx, ly, syn, flow)
    if fused is not None:
        return fused
    lead = flow.x.shape[:1] if flow.static else flow.x.shape[:2]
    x = flow.x.reshape((-1,) + tuple(flow.x.shape[len(lead):]))
    raw, wrap = apply(syn, x, flow.xmax)
    raw = raw.reshape(tuple(lead) + tuple(raw.shape[1:]))
    return run_neuron(ctx, ly, raw, wrap, flow.static, syn.abs_sum * flow.xmax)


#: layer kind -> function ``(ctx, layer, flow) -> flow``
LAYER_KINDS: dict = {"input": layer_input, "flatten": layer_flatten, "dense": layer_synaptic,
                     "conv": layer_synaptic, "pool": layer_synaptic}

#: neuron kinds the engine runs (CUBA is QB-LIF with K = 1, zero reset; the reader reads LOIHI as CUBA; ALIF and
#: RF have no reset and run on the timeline only, :mod:`qblif.exact.timeline`)
NEURONS = ("QBLIF", "CUBA", "SDNN", "ALIF", "RF")


@contextlib.contextmanager
def exact_float_mode(threads: Optional[int]):
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
