"""The exact engine on the global timeline: the run modes whose samples are not independent
(``reset="none"`` continuous runs, stock NetX's ``reset="netx"`` schedule, ``timeline=True``)
and the neurons without a reset (ALIF: Lava's ``ATRLIF``; resonate-and-fire: Lava's ``RF`` /
``RF_IZ``), count for count as :func:`qblif.exact.oracle.simulate`.

Execution. The whole Lava run, ``total = S*T + depth`` steps, is one sequence. The source's
value on every step is :func:`qblif.lava.procs.source.process.frame_at` (a held frame or a
stream's step); layer by layer, a synaptic layer's input at step ``tau`` is its synapse of its
producer's output at ``tau - 1`` (computed for all steps at once by the engine's
:data:`qblif.exact.engine.SYNAPSES`), an SDNN input layer's is the source's value at ``tau``.
Then the neuron runs over the timeline with the reset schedule
:func:`qblif.schedule.reset_schedule`:

* QB-LIF / CUBA: the timeline is cut at the reset steps into segments that each start from
  zero state; the segments (padded at their end to the interval) are a batch for the engine's
  own scans (the native kernel or :func:`qblif.exact.engine.qblif_scan`), so no step
  function is repeated here. ``reset="none"``: one segment, the whole run.
* SDNN: :class:`qblif.exact.engine.SDNNTorch` from zero state, never reset.
* ALIF and RF: step by step in torch (:class:`ALIFTorch`, :class:`RFTorch`), never reset.
* The coverage kinds (:mod:`qblif.exact.kinds`), as the oracle defines them step by step:
  per-output delays through delay lines that forget on the layer's reset schedule in the
  sample mode (:func:`delay_lines`), per-synapse delays (one product per delay), the graded
  payload's 2^-6 floor, then recurrent / graded neurons by :func:`qblif.exact.kinds.run_scan`
  over the reset segments (one sequence where stock's netx schedule keeps the feedback across
  a reset), ``dense_rec`` output delays, recurrent SDNN and ALIF layers step by step,
  ``average`` group sums, bias-driven input neurons.

The per-sample windows are then cut by :func:`qblif.exact.oracle.windows`.
"""
from __future__ import annotations

import dataclasses
from typing import Optional

import numpy as np
import torch

from qblif.exact import ops as ex
from qblif.exact import kinds
from qblif.exact.oracle import NO_RESET, SDNNState, check_no_reset
from qblif.ir import in_message, per_output_delays
from qblif.schedule import frame_at, reset_schedule
from qblif.core import reference


def needs_timeline(eng, reset: str = "sample", timeline: bool = False) -> bool:
    """Whether a run in these modes goes through the global timeline (here) instead of the
    per-sample batches: any reset but ``"sample"``, ``timeline``, an ALIF / RF layer or a
    recurrent SDNN layer (never reset: its feedback runs from sample to sample)."""
    return bool(timeline) or reset != "sample" or any(kinds.recurrent_sdnn(ly)
                                                       for ly in eng.layers) or any(
        ly.neuron is not None and ly.neuron.kind in NO_RESET for ly in eng.layers)


def unsupported(g, ly) -> Optional[str]:
    """A feature of ``ly`` the timeline path does not model yet, or None."""
    if ly.weight_imag is not None and ly.kind != "dense":
        return "complex synapses on a non-dense layer"
    n = ly.neuron
    if n is not None and n.kind == "RF" and ly.weight_rec is not None:
        return "recurrent (dense_rec) resonate-and-fire layers"
    if n is not None and n.kind == "RF" and ly.synaptic and kinds.needs_kinds(g, ly):
        return "axonal delays or graded payloads into resonate-and-fire layers"
    return None


# ------------------------------------------------------------------ neurons on a timeline

def segments(total: int, sched) -> torch.Tensor:
    """Rows of the timeline ``0..total-1`` cut at the reset steps of ``sched`` (``(interval,
    offset)``: zeroed before every 0-based step ``tau`` with ``(tau + 1) % interval == offset %
    interval``; None: never): int64 ``(B, R)`` of row indices, ``-1`` pads each segment at its
    end to ``R``; read row by row they are ``0..total-1`` in order."""
    if sched is None:
        return torch.arange(total).reshape(1, total)
    r = int(sched[0])
    first = (int(sched[1]) - 1) % r          # the first reset step; before it: a short segment
    tau = torch.arange(total)
    late = (tau - first).clamp(min=0)
    seg = torch.where(tau < first, 0, late // r + (1 if first else 0))
    col = torch.where(tau < first, tau, late % r)
    idx = torch.full((int(seg[-1]) + 1 if total else 0, r), -1, dtype=torch.int64)
    idx[seg, col] = tau
    return idx


def _qblif(eng, ly, raw, wrap, bound, idx, record_uv):
    """A QB-LIF / CUBA layer over the timeline: its segments as one batch of the engine's
    scans. raw: ``(B, R, *shape)`` synaptic sums before the wrap, segment by segment (rows
    of :func:`segments` ``idx``; its -1 pads hold zero sums)."""
    p = eng.params(ly, numpy=eng.use_native)
    narrow = ex.is_narrow(p, raw, bound)
    if eng.use_native:
        from qblif.exact import native
        res = native.qblif_scan(p, raw, False, wrap, idx.shape[1], record_uv, eng.threads,
                                narrow)
    else:
        res = ex.qblif_scan(p, ex.as_int32(raw, wrap), False, idx.shape[1], record_uv, narrow)
    return _unsegment(res, idx)


def _unsegment(res: dict, idx: torch.Tensor) -> dict:
    """Outputs ``(B, R, *shape)`` in the layout of :func:`segments` ``idx`` -> the timeline
    ``(total, *shape)`` (pads dropped; counts keep their dtype)."""
    keep = (idx >= 0).reshape(-1)
    single = idx.shape[0] == 1 and bool(keep.all())
    return {k: v.reshape((-1,) + tuple(v.shape[2:]))[slice(None) if single else keep]
            for k, v in res.items()}


def _segmented(x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """A timeline ``x (total, *shape)`` in the layout of :func:`segments` ``idx``: ``(B, R,
    *shape)``, zeros in the pads."""
    total = x.shape[0]
    x_ext = torch.cat([x, x.new_zeros((1,) + tuple(x.shape[1:]))])
    return x_ext[torch.where(idx >= 0, idx, total)]


def _sdnn(eng, ly, a, record_uv):
    st = ex.SDNNTorch(ly, SDNNState(ly), eng.device)
    return {"n": st.scan(a[None], False, a.shape[0])[0]}


class ALIFTorch:
    """Lava's ATRLIF fixed-point state in torch, for one ALIF layer over a timeline; the
    torch twin of :class:`qblif.exact.oracle.ALIFState` (the two are kept side by side: the
    same formulas in the same order). u and v are a QB-LIF's that never fires
    (:func:`qblif.exact.engine.qblif_step_wide` with a threshold above ``V_MAX``); theta
    (state units, ``vth << 6`` at rest) and r relax with 12-bit decays; a spike when
    ``v - r >= theta``, then ``r += 2 theta``, ``theta += vThStep << 6``."""

    def __init__(self, eng, ly):
        n = ly.neuron
        self.lif = dataclasses.replace(ex.QBLIFParams.of(ly), theta=reference.MAX_UV, k=1,
                                       subtract=False).on(eng.device)
        self.theta0 = int(n.vth) << reference.VTH_SHIFT
        self.th_mul = reference.DECAY_UNITY - int(n.params["thDecay"])
        self.ref_mul = reference.DECAY_UNITY - int(n.params["refDecay"])
        self.step_up = int(n.params["vThStep"]) << reference.VTH_SHIFT
        shape = ex.inner_shape(ly.shape)
        self.u = torch.zeros(shape, dtype=torch.int32, device=eng.device)
        self.v = torch.zeros_like(self.u)
        self.theta = torch.full(shape, self.theta0, dtype=torch.int64, device=eng.device)
        self.r = torch.zeros(shape, dtype=torch.int64, device=eng.device)

    def step(self, a: torch.Tensor) -> torch.Tensor:
        """One step on int32 ``a``; the spikes (int32 0/1)."""
        self.u, self.v, _ = ex.qblif_step_wide(self.lif, self.u, self.v, a)
        self.theta = ex.rtz12((self.theta - self.theta0) * self.th_mul) + self.theta0
        self.r = ex.rtz12(self.r * self.ref_mul)
        s = (self.v.long() - self.r) >= self.theta
        self.r = torch.where(s, self.r + 2 * self.theta, self.r)
        self.theta = torch.where(s, self.theta + self.step_up, self.theta)
        return s.int()


class RFTorch:
    """Lava's RF / RF_IZ fixed-point state in torch (dense layers): the torch twin of
    :class:`qblif.exact.oracle.RFState`, whose constants (integer sin/cos decays, ``vth << 6``)
    it takes; the same formulas in the same order. Inputs ``<< 6``; ``re, im`` rotate by the
    decays (each product shifted right by 12 toward zero), clipped to ``±(2^23 - 1)``."""

    def __init__(self, eng, ly):
        from qblif.exact.oracle import RFState
        st = RFState(ly)
        self.sin, self.cos, self.vth, self.iz, self.limit = st.sin, st.cos, st.vth, st.iz, \
            st.LIMIT
        self.re = torch.zeros(tuple(ly.shape), dtype=torch.int64, device=eng.device)
        self.im = torch.zeros_like(self.re)

    def step(self, a_re: torch.Tensor, a_im: torch.Tensor) -> torch.Tensor:
        re = ex.rtz12(self.cos * self.re) - ex.rtz12(self.sin * self.im) + \
            (a_re.long() << reference.ACT_SHIFT)
        im = ex.rtz12(self.sin * self.re) + ex.rtz12(self.cos * self.im) + \
            (a_im.long() << reference.ACT_SHIFT)
        re, im = re.clamp(-self.limit, self.limit), im.clamp(-self.limit, self.limit)
        if self.iz:     # RF_IZ: a spike when im reaches vth; re -> 0, im -> vth - 1
            s = im >= self.vth
            self.re = torch.where(s, 0, re)
            self.im = torch.where(s, self.vth - 1, im)
            return s.int()
        s = (re >= self.vth) & (im >= 0) & (self.im < 0)
        self.re, self.im = re, im
        return s.int()


def _alif(eng, ly, a, record_uv):
    """An ALIF layer over the timeline; a recurrent one (``dense_rec``) adds
    ``wrap32(W_rec @ its spikes of the step before)`` from step 1 on (never dropped: ALIF
    runs with ``reset="none"`` only), the sum wrapped to int32."""
    st = ALIFTorch(eng, ly)
    rec = kinds.Recurrent(ly) if ly.weight_rec is not None else None
    out = {"n": torch.empty(a.shape, dtype=torch.int32, device=a.device)}
    if record_uv:
        out["u"], out["v"] = torch.empty_like(out["n"]), torch.empty_like(out["n"])
    for t in range(a.shape[0]):
        at = a[t]
        if rec is not None and t >= 1:
            at = ex.wrap32(at.long() + rec(out["n"][t - 1][None], 1)[0].reshape(at.shape)).int()
        out["n"][t] = st.step(at)
        if record_uv:
            out["u"][t], out["v"][t] = st.u, st.v
    return out


def _rf(eng, ly, a, a_im):
    st = RFTorch(eng, ly)
    n = torch.empty(a.shape, dtype=torch.int32, device=a.device)
    for t in range(a.shape[0]):
        n[t] = st.step(a[t], a_im[t])
    return {"n": n}        # no u, v (as the oracle: RF has re, im)


def imag_synapse(ly) -> ex.Synapse:
    """The imaginary half of a complex dense layer (``weight_imag``) as a dense synapse."""
    return ex.dense_synapse(ly, ly.weight_imag)


# ------------------------------------------------------------------ the run

def simulate(eng, frames, steps: int, *, stream: bool = False, reset: str = "sample",
             reset_interval=None, reset_offset: int = 0, record_uv: bool = False,
             layers_to_record=None) -> dict:
    """Every recorded layer's outputs on the global timeline, as
    :func:`qblif.exact.oracle.simulate`: ``{index: int32 (S*T + depth, *shape)}`` (file order),
    with ``record_uv`` also ``("u", i)``, ``("v", i)`` (not for SDNN, which raises
    NotImplementedError as the oracle, nor RF layers). ``eng``: an
    :class:`qblif.exact.engine.ExactEngine`; frames and modes as the oracle's."""
    g = eng.ir
    for ly in eng.layers:
        why = unsupported(g, ly)
        if why:
            raise NotImplementedError(f"layer {ly.index}: the exact engine has no {why} on "
                                      f"the timeline (reset={reset!r}) yet "
                                      "(run it with engine='lava')")
        check_no_reset(ly, reset_schedule(g, ly, steps, reset, reset_interval, reset_offset))
    if record_uv and eng.stateful:
        raise NotImplementedError("SDNN layers have no u, v states to record")
    frames = np.asarray(frames)
    total = frames.shape[0] * int(steps) + int(g.graph["depth"])
    record = {ly.index for ly in eng.layers if ly.neuron is not None or ly.kind == "average"}
    if layers_to_record is not None:
        record &= {int(i) for i in layers_to_record}
    rows, at = _source(frames, steps, stream, total)
    out = {}
    with ex.exact_float_mode(eng.threads), torch.no_grad():
        x = torch.as_tensor(np.ascontiguousarray(rows), device=eng.device).to(torch.int32)
        if x.dim() == 4:
            x = x.permute(0, 2, 3, 1).contiguous()
        at = torch.as_tensor(at, device=eng.device)
        xmax = int(np.abs(frames).max(initial=0))
        for ly in eng.layers:
            if ly.kind == "flatten":
                x = ex.to_file_order(x, 1).reshape(x.shape[0], -1)
                continue
            if ly.kind == "average":       # exact sums of groups of neurons (file order)
                xs = ex.to_file_order(x if at is None else x[at], 1)
                x = xs.reshape(xs.shape[0], int(ly.shape[0]), -1).sum(-1, dtype=torch.int64)
                at, xmax = None, ex.abs_bound(x)
                if ly.index in record:
                    out[ly.index] = x.to(torch.int32).cpu().numpy()
                continue
            if ly.neuron is None:          # a neuron-less input layer: the source's values
                continue
            sched = reset_schedule(g, ly, steps, reset, reset_interval, reset_offset)
            line = sched if reset == "sample" else None   # the sample mode's lines forget
            res = _layer(eng, ly, x, at, xmax, sched, record_uv, line, line)
            at = None
            x = res["n"]
            kind = ly.neuron.kind
            xmax = ex.abs_bound(x) if kind == "SDNN" or kinds.is_graded(ly) else \
                int(ly.neuron.max_burst) if kind not in NO_RESET else 1
            if ly.index in record:
                for key, v in res.items():
                    k = ly.index if key == "n" else (key, ly.index)
                    out[k] = ex.to_file_order(v, 1).to(torch.int32).cpu().numpy()
    return out


def _source(frames, steps: int, stream: bool, total: int):
    """The source's values on the timeline as ``(rows (U, *shape), at (total,) int64)``:
    step ``tau`` (0-based) sends ``rows[at[tau]]`` (:func:`frame_at` of ``tau + 1``). Held frames:
    the S frames and a zero row (each synapse then runs once per frame); a stream: every step."""
    if stream:
        return np.stack([frame_at(frames, t, steps, True) for t in range(1, total + 1)]), \
            np.arange(total)
    rows = np.concatenate([frames, np.zeros((1,) + frames.shape[1:], frames.dtype)])
    return rows, np.minimum(np.arange(total) // int(steps), frames.shape[0])


def _sums(syn, apply, x_ext, sel, xmax):
    """A synapse's sums of the rows ``sel`` (int64 ``(B, R)`` of rows of ``x_ext``) in their
    layout, ``(B, R, *shape)``, and the wrap; the product runs on the fewer of the distinct
    rows and the slots (held frames: once per frame)."""
    if x_ext.shape[0] < sel.numel():
        raw, wrap = apply(syn, x_ext, xmax)
        return raw.reshape((x_ext.shape[0],) + tuple(raw.shape[1:]))[sel], wrap
    raw, wrap = apply(syn, x_ext[sel.reshape(-1)], xmax)
    return raw.reshape(tuple(sel.shape) + tuple(raw.shape[1:])), wrap


def _layer(eng, ly, x, at, xmax, sched, record_uv, line=None, gate=None) -> dict:
    """One neuron layer over the timeline from its producer's outputs: step ``tau`` sent
    ``x[at[tau]]`` (``at`` None: ``x[tau]``; ``x`` ``(rows, *inner)``, ``|x| <= xmax``).
    ``line``: the schedule on which its per-output delay lines forget (the sample mode's);
    ``gate``: the one on which its recurrent feedback is dropped (the same). Returns
    ``{"n": outputs, ["u", "v"]}`` (int32 ``(total, *shape)``, channels-last)."""
    kind = ly.neuron.kind
    if ly.kind == "input":
        xs = x if at is None else x[at]
        if ly.proc == "BiasNeuron":        # a CUBA neuron driven by the value as its bias
            return _bias_input(eng, ly, xs, sched, record_uv)
        return _sdnn(eng, ly, xs.long(), record_uv)   # a Delta encoder: the same step's values
    syn = eng.synapse(ly)
    apply = ex.SYNAPSES[ly.kind][1]
    n, dev = x.shape[0], x.device
    sent = torch.arange(n, device=dev) if at is None else at       # the row sent at each step
    got = torch.cat([sent.new_full((1,), n), sent[:-1]])            # received (row n: zeros)
    x_ext = torch.cat([x, x.new_zeros((1,) + tuple(x.shape[1:]))])
    qblif = kind in ("QBLIF", "CUBA", "LOIHI")
    if kinds.needs_kinds(eng.ir, ly):
        a, bound = _kinds_input(eng, ly, syn, x_ext, got, xmax, line)
        return _kinds_neuron(eng, ly, a, bound, sched, record_uv, line, gate)
    idx = segments(got.shape[0], sched if qblif else None).to(dev)  # (B, R), -1: pads
    sel = torch.where(idx >= 0, got[idx.clamp(min=0)], n)           # rows of x_ext per slot
    raw, wrap = _sums(syn, apply, x_ext, sel, xmax)
    if qblif:
        return _qblif(eng, ly, raw, wrap, syn.abs_sum * xmax, idx, record_uv)
    a = ex.as_int32(raw, wrap)[0]                  # one segment: the whole run
    if kind == "SDNN":
        return _sdnn(eng, ly, a.long(), record_uv)
    if kind == "ALIF":
        return _alif(eng, ly, a, record_uv)
    if kind == "RF":
        return _rf(eng, ly, a, ex.as_int32(*_sums(imag_synapse(ly), ex.dense, x_ext, sel,
                                                  xmax))[0])
    raise NotImplementedError(f"layer {ly.index}: the exact engine has no '{kind}' neurons")


# ------------------------------------------------------------------ coverage kinds

def delay_lines(y: torch.Tensor, d: np.ndarray, line) -> torch.Tensor:
    """Per-output delay lines over a timeline: ``y (total, *shape)`` -> ``out[tau, o] =
    y[tau - d_o, o]`` where ``tau - d_o`` is at or after the line's last clear
    (:func:`qblif.exact.oracle.last_clear` of ``line``, and step 0), else 0 (``d``: flat
    per-output delays in the engine's order). The oracle's input delay lines (``y``: the
    undelayed synaptic sums, ``y[0] = 0``) and ``dense_rec`` output delays
    (:func:`qblif.exact.oracle._delayed_output`)."""
    from qblif.exact.oracle import last_clear
    total = y.shape[0]
    flat = y.reshape(total, -1)
    tau = torch.arange(total, device=y.device)[:, None]
    src = tau - torch.as_tensor(d, device=y.device)[None, :]
    lo = last_clear(line, tau).clamp(min=0) if line is not None else 0
    out = torch.gather(flat, 0, src.clamp(min=0).expand(total, flat.shape[1]))
    return torch.where(src >= lo, out, 0).reshape(y.shape)


def _kinds_input(eng, ly, syn, x_ext, got, xmax, line):
    """``ly``'s neuron input over the timeline as the oracle's ``synaptic_input_at`` (delays,
    the graded payload's 2^-6 scale; not the recurrent part): ``(a int32 (total, *shape),
    bound on |a|)``. ``got[tau]``: the row of ``x_ext`` it receives undelayed at ``tau``."""
    total, n = got.shape[0], x_ext.shape[0] - 1
    bound = syn.abs_sum * xmax
    per_out = per_output_delays(ly.delay, ly.kind)
    if ly.delay is not None and per_out is None:        # per input / synapse (DelayDense)
        d = np.asarray(ly.delay, np.int64)
        w = np.asarray(ly.weight, np.int64)
        acc = wrap = None
        for dv in (int(v) for v in np.unique(d)):
            key = ("timeline_delay", dv)
            if key not in syn.cache:       # the full bound: each part and their sum exact
                syn.cache[key] = ex.Synapse(ly, np.ascontiguousarray(np.where(d == dv, w, 0).T),
                                            syn.abs_sum)
            rows = torch.cat([got.new_full((min(dv, total),), n), got])[:total]
            raw, wrap = _sums(syn.cache[key], ex.dense, x_ext, rows[None], xmax)
            acc = raw if acc is None else acc + raw
        a = ex.as_int32(acc[0], wrap)
    else:
        raw, wrap = _sums(syn, ex.SYNAPSES[ly.kind][1], x_ext, got[None], xmax)
        a = ex.as_int32(raw[0], wrap)
        if per_out is not None and ly.weight_rec is None:       # delays the input
            a = delay_lines(a, kinds.flat_delays(per_out, ly.shape), line)
    sh = int(in_message(eng.ir, ly.index).scale_exp)
    if sh:      # a graded-spike CUBA's payload: floor(int32 sum / 2^6)
        a = torch.bitwise_right_shift(a, sh)
        bound = (bound >> sh) + 1
    return a, bound


def _reset_steps(total: int, sched) -> set:
    """The 0-based steps before which a neuron on ``sched`` is zeroed (besides step 0)."""
    if sched is None:
        return set()
    r, off = int(sched[0]), int(sched[1])
    return {t for t in range((off - 1) % r, total, r) if t > 0}


def _kinds_neuron(eng, ly, a, bound, sched, record_uv, line, gate) -> dict:
    """``ly``'s neuron over the timeline on its input ``a`` (int32 ``(total, *shape)``)."""
    kind = ly.neuron.kind
    if kind == "SDNN" and ly.weight_rec is None:
        return _sdnn(eng, ly, a.long(), record_uv)
    total = a.shape[0]
    if kind == "ALIF":
        res = _alif(eng, ly, a, record_uv)
    elif ly.weight_rec is None and not kinds.is_graded(ly):     # a plain neuron: the fast scans
        idx = segments(total, sched).to(a.device)
        return _qblif(eng, ly, _segmented(a, idx), 0, bound, idx, record_uv)
    elif kind == "SDNN":
        res = _sdnn_rec(eng, ly, a)
    elif ly.weight_rec is None or gate is not None or sched is None:
        # the segments from zero state, no feedback into their first step: one batch
        idx = segments(total, sched).to(a.device)
        res = _unsegment(kinds.run_scan(eng, ly, _segmented(a, idx), False, bound,
                                        idx.shape[1], record_uv), idx)
    else:       # stock's netx schedule keeps the feedback across a reset: one sequence
        res = kinds.run_scan(eng, ly, a[None], False, bound, total, record_uv,
                             resets=_reset_steps(total, sched), keep_feedback=True)
        res = {k: v[0] for k, v in res.items()}
    per_out = per_output_delays(ly.delay, ly.kind)
    if ly.weight_rec is not None and per_out is not None:   # lava-dl's output delay
        res["n"] = delay_lines(res["n"], kinds.flat_delays(per_out, ly.shape), line)
    return res


def _sdnn_rec(eng, ly, a) -> dict:
    """A recurrent (``dense_rec``) SDNN layer over the timeline, as the oracle: its int64
    input plus, from step 1 on, ``wrap32(W_rec @ its message of the step before)`` (never
    dropped: an SDNN layer never resets), one step at a time."""
    st = ex.SDNNTorch(ly, SDNNState(ly), eng.device)
    rec = kinds.Recurrent(ly)
    out = torch.empty(a.shape, dtype=torch.int32, device=a.device)
    prev = None
    for t in range(a.shape[0]):
        at = a[t].long()
        if prev is not None:
            at = at + rec(prev[None], ex.abs_bound(prev))[0].reshape(at.shape)
        prev = st.step(at)
        out[t] = ex.wrap32(prev).int()
    return {"n": out}


def _bias_input(eng, ly, xs, sched, record_uv) -> dict:
    """A bias-driven CUBA input neuron over the timeline: no synaptic input, bias
    ``value << 6`` (:data:`qblif.exact.oracle.INPUT_BIAS_EXP`) of the source's value on each
    step ``xs (total, *inner)``; zeroed on its reset schedule."""
    from qblif.exact.oracle import INPUT_BIAS_EXP
    bias = ex.wrap32(xs.long() << INPUT_BIAS_EXP).int()
    idx = segments(xs.shape[0], sched).to(xs.device)        # segments from zero state
    bias = _segmented(bias, idx)
    zero = torch.zeros_like(bias[:, 0])
    return _unsegment(kinds.run_scan(eng, ly, zero, True, 0, idx.shape[1], record_uv,
                                     bias=bias), idx)


def run(eng, frames, steps: int, *, stream: bool = False, reset: str = "sample",
        reset_interval=None, reset_offset: int = 0, record_uv: bool = False,
        layers_to_record=None, timeline: bool = False) -> dict:
    """:func:`simulate`, then (unless ``timeline``) the per-sample windows ``(S, T, *shape)``
    cut by :func:`qblif.exact.oracle.windows`, as :func:`qblif.exact.oracle.forward`."""
    from qblif.exact.oracle import windows
    steps = int(steps)
    if steps < 1:
        raise ValueError(f"steps_per_sample={steps} must be >= 1")
    frames = np.asarray(frames)
    want = eng.input_shape
    if frames.shape[2 if stream else 1:] != want:
        raise ValueError(f"input {'stream' if stream else 'frames'} have shape {frames.shape}, "
                         f"expected (samples, {'steps, ' if stream else ''}"
                         f"{', '.join(map(str, want))})")
    out = simulate(eng, frames, steps, stream=stream, reset=reset, reset_interval=reset_interval,
                   reset_offset=reset_offset, record_uv=record_uv,
                   layers_to_record=layers_to_record)
    return out if timeline else windows(eng.ir, out, frames.shape[0], steps)
