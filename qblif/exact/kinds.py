"""The compiler's coverage kinds in the batched exact engine (:mod:`qblif.exact.engine`),
in its per-sample mode (held frames or streams, every neuron reset at the start of its
window): axonal
delays, recurrent ``dense_rec`` synapses, graded-spike CUBA, the ``average`` readout and
bias-driven CUBA input neurons. (The neuron-less integrator layers need nothing here: they
are CUBA neurons the QB-LIF scans run as they are.) Each equals :func:`qblif.exact.oracle.simulate`
(the numpy oracle, docs/coverage.md), windows cut as :func:`qblif.exact.oracle.windows` does.

Timing (derived from the oracle). Layer ``i`` at synaptic depth ``d`` has
``reset_offset = d + 1``; its window for sample s is global (0-based) steps
``s*T + reset_offset - 1 + j``, j < T, and its neuron is zeroed at ``j = 0``. Its producer's
window is one step earlier (``reset_offset - 1``), so the producer's windows laid end to end
are its contiguous timeline, and window step j of layer i receives (no delay) the producer's
window step j. With a delay D, step j receives the producer's global step ``s*T +
reset_offset - 2 + j - D``, i.e. the producer's window step ``j - D`` of the same sample when
``j >= D``, else a step of an earlier sample (or of the producer's steps before its first
window, which do not depend on the input: the oracle on zero frames gives them).

* **Per-output delays, cleared** (dense one delay per output neuron, conv per channel or per
  neuron, on a QB-LIF / CUBA layer): the delay line forgets at the layer's reset
  (``last_clear`` = the window start), so ``a[s, j, o] = syn(x[s, j - D_o])[o]`` for
  ``j >= D_o``, else 0: the undelayed sums of the window, shifted per output (a gather).
* **Per-input / per-synapse delays** (Lava ``DelayDense``; the oracle never clears them) and
  per-output delays on SDNN layers (never reset, their lines never clear): the input's
  timeline is the chunk's windows end to end, preceded by the last ``max D`` steps of the
  previous chunk (carried) or, for the first chunk, of the producer's steps before its first
  window. Per synapse: ``a = sum_d x_tl[t - d] @ (W * [D == d])^T``, one exact product per
  distinct delay (every partial sum is bounded by the same ``sum |w| * max|x|`` as the whole).
* **dense_rec**: ``a_t = wrap32(ff_t + wrap32(W_rec @ out_{t-1}))`` for window steps
  ``t >= 1`` (the sample mode's gate drops the feedback on the reset step), a per-step scan
  batched over samples with the feedback product inside. Its per-output delays delay its
  *output* (lava-dl's reading): the counts every consumer and the record see are the
  undelayed ones shifted per neuron inside the window (the line clears at the reset); u, v
  are undelayed; the feed-forward input is not delayed.
* **Graded-spike CUBA**: the CUBA step (K = 1) where a spike sends ``v >> 6`` (v before its
  reset to 0); the receiving layer (``in_message(...).scale_exp = 6``) floors its int32
  synaptic sums by 2^6 (an arithmetic shift) before its neuron.
* **average**: exact integer sums of groups of consecutive neurons (file order) per step
  (:func:`qblif.exact.oracle.average_counts`).
* **Bias-driven input neuron** (``proc == "BiasNeuron"``, depth 0, window steps
  ``s*T .. s*T + T - 1``): a CUBA scan with zero input and bias ``frame << 6`` per sample.

Streams (a value per step instead of a held frame) take the same per-sample derivation: a
window still only sees its own sample's window, and the steps before each layer's first
window still only see zeros; a bias-driven input neuron then takes each step's bias. The
other modes (``reset`` other than ``"sample"``, ``timeline``) run on the global timeline
(:mod:`qblif.exact.timeline`, which reuses :func:`run_scan` and the helpers here).

Entry points are :data:`LAYER_KINDS`, which :mod:`qblif.exact.engine` merges into its table
(:mod:`qblif.exact` imports this module); a layer with none of these features goes
through the engine's unchanged fast paths.
"""
from __future__ import annotations

import dataclasses
from typing import Optional

import numpy as np
import torch

from qblif.exact import ops as ex
from qblif.ir import in_message, layers, per_output_delays, producer
from qblif.core import reference

GRADED_MAX = (reference.V_MAX >> 6) + 1     # a graded payload v >> 6 is below this


# ------------------------------------------------------------------ what a layer needs

def is_graded(ly) -> bool:
    return ly.neuron is not None and ly.neuron.graded_spike


def _shift(ctx, ly) -> int:
    return int(in_message(ctx.engine.ir, ly.index).scale_exp)


def needs_kinds(g, ly) -> bool:
    """Whether synaptic layer ``ly`` has a coverage feature (else the engine's fast paths)."""
    return ly.delay is not None or ly.weight_rec is not None or is_graded(ly) or \
        bool(in_message(g, ly.index).scale_exp)


def _has_kinds(eng) -> bool:
    """Whether any layer of the engine's IR has a coverage feature (cached on the engine)."""
    if getattr(eng, "_has_kinds", None) is None:
        eng._has_kinds = any(ly.proc == "BiasNeuron" or (ly.synaptic and needs_kinds(eng.ir, ly))
                             for ly in eng.layers)
    return eng._has_kinds


def _history(ly) -> bool:
    """Whether ``ly``'s input delays reach into earlier samples (see the module doc)."""
    if ly.delay is None:
        return False
    if per_output_delays(ly.delay, ly.kind) is None:     # per input / synapse: DelayDense
        return True
    if ly.weight_rec is not None:                         # an output delay, cleared
        return False
    return ly.neuron.kind == "SDNN"                       # never reset, never cleared


def recurrent_sdnn(ly) -> bool:
    """A recurrent (``dense_rec``) SDNN layer: never reset, so its feedback runs from sample
    to sample; the engine runs it on the global timeline only."""
    n = ly.neuron
    return n is not None and n.kind == "SDNN" and ly.weight_rec is not None


def evaluate_refusal(ir) -> Optional[str]:
    """Why ``qblif evaluate`` cannot run ``ir`` through the engine's truncated windows: delays
    that reach into earlier samples (or None)."""
    for ly in layers(ir):
        if ly.synaptic and _history(ly):
            return (f"layer {ly.index} has axonal delays that reach into earlier samples "
                    "(per input / per synapse)")
    return None


def delay_steps(ir) -> int:
    """The axonal delays' share of the latency from input to output: the sum of each layer's
    largest delay (as :func:`qblif.training.slayer.hdf5.latency` adds lava-dl's)."""
    return sum(int(np.max(ly.delay)) for ly in layers(ir) if ly.delay is not None)


# ------------------------------------------------------------------ helpers

def flat_delays(delay, shape) -> np.ndarray:
    """Per-output delays in file order ``shape`` -> the engine's flat (channels-last) order."""
    return np.asarray(ex.to_internal(np.asarray(delay, np.int64).reshape(shape), shape)).reshape(-1)


def _shift_in_window(x: torch.Tensor, d: np.ndarray) -> torch.Tensor:
    """``x (B, T, *shape)`` -> ``y[b, j, o] = x[b, j - d_o, o]`` for ``j >= d_o``, else 0
    (``d``: flat per-output delays in the engine's order)."""
    b, t = x.shape[:2]
    flat = x.reshape(b, t, -1)
    pad = int(min(int(d.max(initial=0)), t))
    if pad == 0:
        return x
    xp = torch.cat([flat.new_zeros((b, pad, flat.shape[2])), flat], dim=1)
    idx = (pad + torch.arange(t)[:, None] - torch.as_tensor(d)[None, :]).clamp_(min=0)
    y = torch.gather(xp, 1, idx.to(x.device).expand(b, t, flat.shape[2]))
    return y.reshape(x.shape)


def _windows(flow: ex.Flow, steps: int) -> torch.Tensor:
    """A flow as ``(B, T, *inner)`` (a static one repeated)."""
    if flow.static:
        return flow.x[:, None].expand((flow.x.shape[0], steps) + tuple(flow.x.shape[1:]))
    return flow.x


def _oracle_prefix(ctx) -> dict:
    """The oracle's timelines on zero frames (one sample): every layer's steps before its
    first window, which do not depend on the input (cached for the run)."""
    key = ("kinds", "prefix")
    if key not in ctx.run_state:
        from qblif.exact.oracle import simulate
        eng = ctx.engine
        ctx.run_state[key] = simulate(eng.ir, np.zeros((1,) + eng.input_shape, np.int64),
                                      ctx.steps)
    return ctx.run_state[key]


def _producer_prefix(ctx, ly, step_shape, depth: int) -> torch.Tensor:
    """The last ``depth`` steps of ``ly``'s input before its first window ``(depth,
    *step_shape)`` in the engine's layout (zeros before global step 0)."""
    out = np.zeros((depth,) + tuple(step_shape), np.int64)
    src = producer(ctx.engine.ir, ly.index)
    pre = ly.reset_offset - 2               # the producer's steps 0 .. pre - 1
    if pre > 0 and depth > 0 and src is not None and src.index in _oracle_prefix(ctx):
        tl = _oracle_prefix(ctx)[src.index][:pre]
        if len(step_shape) == 3:        # conv / pool input: channels-last
            tl = tl.transpose(0, 2, 3, 1)
        tl = tl.reshape((pre,) + tuple(step_shape))[-depth:]
        out[depth - len(tl):] = tl
    return torch.as_tensor(out, device=ctx.engine.device)


def _timeline(ctx, ly, flow: ex.Flow, depth: int):
    """``ly``'s input as one timeline ``(depth + B*T, *inner)``: the carried last ``depth``
    steps, then the chunk's windows end to end; and a bound on its values. Carries on."""
    if ctx.layer_steps:
        raise NotImplementedError(f"layer {ly.index}: delays that reach into earlier samples "
                                  "need whole windows (no layer_steps)")
    steps = ctx.steps
    x = _windows(flow, steps)
    b = x.shape[0]
    x = x.reshape((b * steps,) + tuple(x.shape[2:]))
    key = ("kinds", "carry", ly.index)
    carry = ctx.run_state.get(key)
    if carry is None:
        carry = _producer_prefix(ctx, ly, x.shape[1:], depth)
    tl = torch.cat([carry.to(torch.int64), x.to(torch.int64)], dim=0)
    ctx.run_state[key] = tl[tl.shape[0] - depth:].clone()
    return tl, max(flow.xmax, ex.abs_bound(carry))


def _sdnn_warm(ctx, ly) -> None:
    """Replace the engine's SDNN warm-up state of ``ly`` (made from undelayed synapses) by the
    state the oracle's steps before its first window leave, delays and graded inputs
    included (once per run; SDNN layers are never reset)."""
    key = ("kinds", "sdnn_warm", ly.index)
    if key in ctx.run_state:
        return
    from qblif.exact.oracle import SDNNState, synaptic_input_at
    tl = _oracle_prefix(ctx)
    total = next(iter(tl.values())).shape[0]
    src = producer(ctx.engine.ir, ly.index)
    hist = tl[src.index] if src is not None and src.index in tl else \
        np.zeros((total,) + tuple(ly.in_shape), np.int64)
    hist = hist.reshape((total, -1) if ly.kind == "dense" else (total,) + tuple(ly.in_shape))
    st, sh = SDNNState(ly), _shift(ctx, ly)
    for tau in range(ly.reset_offset - 1):
        a = np.asarray(synaptic_input_at(ly, hist, tau, -1), np.int64)
        st.step(np.right_shift(a, sh) if sh else a)
    ctx.sdnn[ly.index] = ex.SDNNTorch(ly, st, ctx.engine.device)
    ctx.run_state[key] = True


# ------------------------------------------------------------------ synaptic input

def _rows(w: np.ndarray, dtype, device):
    return torch.as_tensor(np.ascontiguousarray(w.T)).to(device=device, dtype=dtype)


def _per_synapse(ctx, ly, syn: ex.Synapse, flow: ex.Flow) -> torch.Tensor:
    """Dense with per-input / per-synapse delays: int32 ``(B, T, out)``."""
    d = np.asarray(ly.delay, np.int64)
    dmax = int(d.max())
    tl, xmax = _timeline(ctx, ly, flow, dmax)
    n = tl.shape[0] - dmax
    bound = syn.abs_sum * xmax
    dtype = ex.gemm_dtype(bound)
    dev = tl.device if dtype is not None else torch.device("cpu")
    dtype = dtype or torch.int64
    tl = tl.reshape(tl.shape[0], -1).to(device=dev, dtype=dtype)
    w = np.asarray(ly.weight, np.int64)
    cache = syn.cache.setdefault(("per_synapse", dtype, str(dev)), {})
    acc = None
    for dv in np.unique(d):
        if int(dv) not in cache:
            cache[int(dv)] = _rows(np.where(d == dv, w, 0), dtype, dev)
        y = tl[dmax - int(dv):dmax - int(dv) + n] @ cache[int(dv)]
        acc = y if acc is None else acc.add_(y)
    a = ex.as_int32(acc, 32 if bound >= 2 ** 31 else 0).to(flow.x.device)
    return a.reshape((n // ctx.steps, ctx.steps) + tuple(a.shape[1:]))


def _per_output_history(ctx, ly, syn: ex.Synapse, flow: ex.Flow, d_out) -> torch.Tensor:
    """Per-output delays whose line never clears (SDNN): the synapse over the timeline, then
    a gather of step ``t - D_o`` per output: int32 ``(B, T, *out)``."""
    d = flat_delays(d_out, ly.shape)
    dmax = int(d.max())
    tl, xmax = _timeline(ctx, ly, flow, dmax)
    n = tl.shape[0] - dmax
    raw, wrap = ex.SYNAPSES[ly.kind][1](syn, tl, xmax)
    a = ex.as_int32(raw, wrap)
    flat = a.reshape(a.shape[0], -1)
    idx = dmax + torch.arange(n)[:, None] - torch.as_tensor(d)[None, :]
    out = torch.gather(flat, 0, idx.to(flat.device))
    return out.reshape((n // ctx.steps, ctx.steps) + tuple(a.shape[1:]))


def synaptic_input(ctx, ly, flow: ex.Flow):
    """``ly``'s neuron input for the chunk as the oracle computes it (delays, the graded
    payload's 2^-6 scale; not the recurrent part): ``(a int32, static, bound or None)``."""
    syn = ctx.engine.synapse(ly)
    steps = ctx.layer_steps.get(ly.index, ctx.steps)
    per_out = per_output_delays(ly.delay, ly.kind)
    if ly.delay is not None and per_out is None:
        a, static, bound = _per_synapse(ctx, ly, syn, flow), False, None
    elif per_out is not None and _history(ly):
        a, static, bound = _per_output_history(ctx, ly, syn, flow, per_out), False, None
    else:
        if not flow.static and flow.x.shape[1] != steps:
            flow = ex.Flow(flow.x[:, :steps], False, flow.xmax)
        lead = flow.x.shape[:1] if flow.static else flow.x.shape[:2]
        x = flow.x.reshape((-1,) + tuple(flow.x.shape[len(lead):]))
        raw, wrap = ex.SYNAPSES[ly.kind][1](syn, x, flow.xmax)
        a = ex.as_int32(raw.reshape(tuple(lead) + tuple(raw.shape[1:])), wrap)
        static, bound = flow.static, syn.abs_sum * flow.xmax
        if per_out is not None and ly.weight_rec is None:      # cleared at the reset
            a = _shift_in_window(_windows(ex.Flow(a, static, 0), steps),
                                 flat_delays(per_out, ly.shape))
            static = False
    sh = _shift(ctx, ly)
    if sh:      # a graded-spike CUBA's payload: floor(int32 sum / 2^6)
        a = torch.bitwise_right_shift(a, sh)
        bound = None if bound is None else (bound >> sh) + 1
    return a, static, bound


# ------------------------------------------------------------------ neurons

def _step(p, u, v, a, narrow: bool, graded: bool):
    """One QB-LIF / CUBA step (:func:`qblif.exact.engine.qblif_step_wide` / ``_narrow``);
    ``graded``: ``p`` has K = 1 and subtract reset, and the step returns the graded payload
    ``v >> 6`` of the pre-reset v where it spiked, v then reset to 0."""
    u, v, n = (ex.qblif_step_narrow if narrow else ex.qblif_step_wide)(p, u, v, a)
    if graded:      # v - n * theta (subtract reset) -> the pre-reset v, then zero it
        spiked = n > 0
        payload = torch.where(spiked, torch.bitwise_right_shift(v + p.theta, 6), 0).int()
        v = v.masked_fill(spiked, 0)
        return u, v, payload
    return u, v, n


class Recurrent:
    """The recurrent synapse ``W_rec (out, out)`` as an exact product on flat counts."""

    def __init__(self, ly):
        self.syn = ex.dense_synapse(ly, ly.weight_rec)

    def __call__(self, prev: torch.Tensor, xmax: int) -> torch.Tensor:
        """``wrap32(W_rec @ prev)`` as int64 ``(B, out)``."""
        return ex.as_int32(*ex.dense(self.syn, prev, xmax)).long()


def scan(ctx, ly, a: torch.Tensor, static: bool, bound: Optional[int]) -> dict:
    """``ly``'s neuron (QB-LIF / CUBA, graded or not, with its recurrent synapse if any)
    over its window from zero state, in torch: ``{"n": int32 (B, T, *shape)}`` (counts, or
    graded payloads) + ``u``, ``v``."""
    return run_scan(ctx.engine, ly, a, static, bound, ctx.layer_steps.get(ly.index, ctx.steps),
                    ctx.record_uv)


def run_scan(eng, ly, a: torch.Tensor, static: bool, bound: Optional[int], steps: int,
             record_uv: bool, resets=None, keep_feedback: bool = False, bias=None) -> dict:
    """:func:`scan` with the run's shape given: ``a`` int32 ``(B, *shape)`` (static) or
    ``(B, T, *shape)``; from zero state, which is zeroed again before every step in
    ``resets`` (a set of step indices; the timeline's reset schedule); the recurrent feedback
    of step t - 1 is added from t = 1 on, except on a reset step unless ``keep_feedback``
    (the sample mode drops it, stock's netx schedule keeps it). ``bias``: ``(B, T, *shape)``
    int32 bias per step in state units, replacing the neuron's (a bias-driven input)."""
    p = eng.params(ly)
    graded = is_graded(ly)
    if graded:
        p = dataclasses.replace(p, k=1, subtract=True)
    out_max = GRADED_MAX if graded else int(ly.neuron.max_burst)
    rec = Recurrent(ly) if ly.weight_rec is not None else None
    rec_bound = rec.syn.abs_sum * out_max if rec is not None else 0
    if bound is None:
        bound = ex.abs_bound(a)
    bias_abs = p.bias_abs if bias is None else ex.abs_bound(bias)
    narrow = bias_abs < ex.F32_EXACT and bound + rec_bound < ex.NARROW_INPUT
    shape = a.shape[1:] if static else a.shape[2:]
    b = a.shape[0]
    resets = resets or ()
    u = torch.zeros((b,) + tuple(shape), dtype=torch.int32, device=a.device)
    v = torch.zeros_like(u)
    res = {"n": torch.empty((b, steps) + tuple(shape), dtype=torch.int32, device=a.device)}
    if record_uv:
        res["u"], res["v"] = torch.empty_like(res["n"]), torch.empty_like(res["n"])
    prev = None
    for t in range(steps):
        at = a if static else a[:, t]
        if t in resets:
            u, v = torch.zeros_like(u), torch.zeros_like(v)
            if not keep_feedback:
                prev = None
        if prev is not None:     # feedback from step t - 1 (none on the reset step)
            at = ex.wrap32(at.long() + rec(prev, out_max)).int()
        pt = p if bias is None else dataclasses.replace(p, bias=bias[:, t], bias_abs=bias_abs)
        u, v, n = _step(pt, u, v, at, narrow, graded)
        res["n"][:, t] = n
        if record_uv:
            res["u"][:, t], res["v"][:, t] = u, v
        if rec is not None:
            prev = n
    return res


# ------------------------------------------------------------------ layer kinds

def layer_synaptic(ctx, ly, flow: ex.Flow) -> ex.Flow:
    """Dense / conv / pool: the engine's own path unless ``ly`` has a coverage feature."""
    g = ctx.engine.ir
    if ly.neuron.kind == "SDNN" and _has_kinds(ctx.engine):
        _sdnn_warm(ctx, ly)
    if not needs_kinds(g, ly):
        return ex.layer_synaptic(ctx, ly, flow)
    if recurrent_sdnn(ly):
        raise NotImplementedError(f"layer {ly.index}: the exact engine's per-sample chunks "
                                  "have no recurrent (dense_rec) SDNN layers (run() takes "
                                  "them on the timeline)")
    a, static, bound = synaptic_input(ctx, ly, flow)
    if ly.weight_rec is None and not is_graded(ly):       # a plain neuron: the fast scans
        return ex.run_neuron(ctx, ly, a, 0, static, bound)
    res = scan(ctx, ly, a, static, bound)
    per_out = per_output_delays(ly.delay, ly.kind)
    if ly.weight_rec is not None and per_out is not None:   # lava-dl's output delay
        res["n"] = _shift_in_window(res["n"], flat_delays(per_out, ly.shape))
    ex.record_layer(ctx, ly, res)
    xmax = ex.abs_bound(res["n"]) if is_graded(ly) else int(ly.neuron.max_burst)
    return ex.Flow(res["n"], False, xmax)


def layer_input(ctx, ly, flow: ex.Flow) -> ex.Flow:
    """Input layer: a bias-driven CUBA input neuron (the frame is its bias mantissa, exponent
    :data:`qblif.exact.oracle.INPUT_BIAS_EXP`, no synaptic input), else the engine's own."""
    if ly.proc != "BiasNeuron":
        return ex.layer_input(ctx, ly, flow)
    from qblif.exact.oracle import INPUT_BIAS_EXP
    steps = ctx.layer_steps.get(ly.index, ctx.steps)
    p = ctx.engine.params(ly)
    bias = ex.wrap32(flow.x.long() << INPUT_BIAS_EXP).int()        # effective_bias, int32
    if flow.static:
        p = dataclasses.replace(p, bias=bias, bias_abs=ex.abs_bound(bias))
        zero = torch.zeros_like(bias)
        res = ex.qblif_scan(p, zero, True, steps, ctx.record_uv, p.bias_abs < ex.F32_EXACT)
    else:               # a stream: the bias of each step's value
        zero = torch.zeros_like(bias[:, 0])
        res = run_scan(ctx.engine, ly, zero, True, 0, steps, ctx.record_uv, bias=bias)
    ex.record_layer(ctx, ly, res)
    return ex.Flow(res["n"], False, int(ly.neuron.max_burst))


def layer_average(ctx, ly, flow: ex.Flow) -> ex.Flow:
    """lava-dl's ``average``: per step, the sums of ``ly.shape[0]`` groups of consecutive
    neurons of the previous layer (file order), int32 ``(B, T, groups)``."""
    x = ex.to_file_order(_windows(flow, ctx.steps), 2)
    sums = x.reshape(x.shape[:2] + (int(ly.shape[0]), -1)).sum(-1, dtype=torch.int64).int()
    if ly.index in ctx.record:
        ctx.out[ly.index] = sums
    return ex.Flow(sums, False, ex.abs_bound(sums))


#: the coverage kinds' layer functions (they take over the base ones of
#: :data:`qblif.exact.ops.LAYER_KINDS` in :data:`qblif.exact.engine.LAYER_KINDS`)
LAYER_KINDS: dict = dict(dense=layer_synaptic, conv=layer_synaptic, pool=layer_synaptic,
                         input=layer_input, average=layer_average)
