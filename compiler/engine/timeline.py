"""The exact engine on the global timeline: the run modes whose samples are not independent
(``reset="none"`` continuous runs, stock NetX's ``reset="netx"`` schedule, ``timeline=True``)
and the neurons without a reset (ALIF: Lava's ``ATRLIF``; resonate-and-fire: Lava's ``RF`` /
``RF_IZ``), count for count as :func:`compiler.forward.simulate`.

Execution. The whole Lava run, ``total = S*T + depth`` steps, is one sequence. The source's
value on every step is :func:`compiler.procs.source.process.frame_at` (a held frame or a
stream's step); layer by layer, a synaptic layer's input at step ``tau`` is its synapse of its
producer's output at ``tau - 1`` (computed for all steps at once by the engine's
:data:`compiler.engine.exact.SYNAPSES`), an SDNN input layer's is the source's value at ``tau``.
Then the neuron runs over the timeline with the reset schedule
:func:`compiler.passes.plan.reset_schedule`:

* QB-LIF / CUBA: the timeline is cut at the reset steps into segments that each start from
  zero state; the segments (padded at their end to the interval) are a batch for the engine's
  own scans (the native kernel or :func:`compiler.engine.exact.qblif_scan`), so no step
  function is repeated here. ``reset="none"``: one segment, the whole run.
* SDNN: :class:`compiler.engine.exact.SDNNTorch` from zero state, never reset.
* ALIF and RF: step by step in torch (:class:`ALIFTorch`, :class:`RFTorch`), never reset.

The per-sample windows are then cut by :func:`compiler.forward.windows`.
"""
from __future__ import annotations

import dataclasses
from typing import Optional

import numpy as np
import torch

from compiler.engine import exact as ex
from compiler.ir import in_message
from compiler.passes.plan import reset_schedule
from qblif_lava import reference

#: neuron kinds without a state reset (the oracle and Lava refuse other reset modes for them)
NO_RESET = ("ALIF", "RF")


def needs_timeline(eng, reset: str = "sample", timeline: bool = False) -> bool:
    """Whether a run in these modes goes through the global timeline (here) instead of the
    per-sample batches: any reset but ``"sample"``, ``timeline``, or an ALIF / RF layer."""
    return bool(timeline) or reset != "sample" or any(
        ly.neuron is not None and ly.neuron.kind in NO_RESET for ly in eng.layers)


def check_no_reset(ly, sched) -> None:
    """ValueError (the oracle's) for an ALIF / RF layer given a reset schedule."""
    if ly.neuron is None or ly.neuron.kind not in NO_RESET or sched is None:
        return
    what = "ALIF (Lava's ATRLIF)" if ly.neuron.kind == "ALIF" else \
        "resonate-and-fire (Lava's RF)"
    raise ValueError(f"layer {ly.index}: {what} has no state reset: use reset='none'")


def unsupported(g, ly) -> Optional[str]:
    """A feature of ``ly`` the timeline path does not model yet, or None."""
    syn = getattr(ly, "synapse", None)
    if ly.delay is not None or (syn is not None and syn.delay is not None):
        return "axonal delays"
    if getattr(ly, "weight_rec", None) is not None:
        return "recurrent (dense_rec) synapses"
    if ly.kind == "average":
        return "average readouts"
    if ly.proc == "BiasNeuron":
        return "bias-driven input neurons"
    if ly.weight_imag is not None and ly.kind != "dense":
        return "complex synapses on a non-dense layer"
    n = ly.neuron
    if n is not None and n.raw.get("gradedSpike"):
        return "graded-spike CUBA"
    if ly.kind not in ("input", "flatten") and in_message(g, ly.index).scale_exp:
        return "graded payloads (a scaled input message)"
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
        from compiler.engine import native
        res = native.qblif_scan(p, raw, False, wrap, idx.shape[1], record_uv, eng.threads,
                                narrow)
    else:
        res = ex.qblif_scan(p, ex.as_int32(raw, wrap), False, idx.shape[1], record_uv, narrow)
    keep = (idx >= 0).reshape(-1)        # counts stay uint8 from the native kernel (0..K)
    single = idx.shape[0] == 1 and bool(keep.all())
    return {k: v.reshape((-1,) + tuple(v.shape[2:]))[slice(None) if single else keep]
            for k, v in res.items()}


def _sdnn(eng, ly, a, record_uv):
    from compiler.forward import SDNNState
    st = ex.SDNNTorch(ly, SDNNState(ly), eng.device)
    return {"n": st.scan(a[None], False, a.shape[0])[0]}


class ALIFTorch:
    """Lava's ATRLIF fixed-point state in torch, for one ALIF layer over a timeline; the
    torch twin of :class:`compiler.forward.ALIFState` (the two are kept side by side: the
    same formulas in the same order). u and v are a QB-LIF's that never fires
    (:func:`compiler.engine.exact.qblif_step_wide` with a threshold above ``V_MAX``); theta
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
    :class:`compiler.forward.RFState`, whose constants (integer sin/cos decays, ``vth << 6``)
    it takes; the same formulas in the same order. Inputs ``<< 6``; ``re, im`` rotate by the
    decays (each product shifted right by 12 toward zero), clipped to ``±(2^23 - 1)``."""

    def __init__(self, eng, ly):
        from compiler.forward import RFState
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
    st = ALIFTorch(eng, ly)
    out = {"n": torch.empty(a.shape, dtype=torch.int32, device=a.device)}
    if record_uv:
        out["u"], out["v"] = torch.empty_like(out["n"]), torch.empty_like(out["n"])
    for t in range(a.shape[0]):
        out["n"][t] = st.step(a[t])
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
    w = np.asarray(ly.weight_imag, np.int64)
    return ex.Synapse(ly, np.ascontiguousarray(w.T), int(np.abs(w).sum(axis=1).max(initial=0)))


# ------------------------------------------------------------------ the run

def simulate(eng, frames, steps: int, *, stream: bool = False, reset: str = "sample",
             reset_interval=None, reset_offset: int = 0, record_uv: bool = False,
             layers_to_record=None) -> dict:
    """Every recorded layer's outputs on the global timeline, as
    :func:`compiler.forward.simulate`: ``{index: int32 (S*T + depth, *shape)}`` (file order),
    with ``record_uv`` also ``("u", i)``, ``("v", i)`` (not for SDNN, which raises
    NotImplementedError as the oracle, nor RF layers). ``eng``: an
    :class:`compiler.engine.exact.ExactEngine`; frames and modes as the oracle's."""
    from compiler.procs.source.process import frame_at
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
    record = {ly.index for ly in eng.layers if ly.neuron is not None}
    if layers_to_record is not None:
        record &= {int(i) for i in layers_to_record}
    rows, at = _source(frames, steps, stream, total)
    out = {}
    with ex._exact_float_mode(eng.threads), torch.no_grad():
        x = torch.as_tensor(np.ascontiguousarray(rows), device=eng.device).to(torch.int32)
        if x.dim() == 4:
            x = x.permute(0, 2, 3, 1).contiguous()
        at = torch.as_tensor(at, device=eng.device)
        xmax = int(np.abs(frames).max(initial=0))
        for ly in eng.layers:
            if ly.kind == "flatten":
                x = ex._to_file_order(x, 1).reshape(x.shape[0], -1)
                continue
            if ly.neuron is None:          # a neuron-less input layer: the source's values
                continue
            res = _layer(eng, ly, x, at, xmax, reset_schedule(g, ly, steps, reset,
                                                              reset_interval, reset_offset),
                         record_uv)
            at = None
            x = res["n"]
            kind = ly.neuron.kind
            xmax = ex._bound(x) if kind == "SDNN" else int(ly.neuron.max_burst) \
                if kind not in NO_RESET else 1
            if ly.index in record:
                for key, v in res.items():
                    k = ly.index if key == "n" else (key, ly.index)
                    out[k] = ex._to_file_order(v, 1).to(torch.int32).cpu().numpy()
    return out


def _source(frames, steps: int, stream: bool, total: int):
    """The source's values on the timeline as ``(rows (U, *shape), at (total,) int64)``:
    step ``tau`` (0-based) sends ``rows[at[tau]]`` (:func:`frame_at` of ``tau + 1``). Held frames:
    the S frames and a zero row (each synapse then runs once per frame); a stream: every step."""
    from compiler.procs.source.process import frame_at
    if stream:
        return np.stack([frame_at(frames, t, steps, True) for t in range(1, total + 1)]), \
            np.arange(total)
    rows = np.concatenate([frames, np.zeros((1,) + frames.shape[1:], frames.dtype)])
    return rows, np.minimum(np.arange(total) // int(steps), frames.shape[0])


def _layer(eng, ly, x, at, xmax, sched, record_uv) -> dict:
    """One neuron layer over the timeline from its producer's outputs: step ``tau`` sent
    ``x[at[tau]]`` (``at`` None: ``x[tau]``; ``x`` ``(rows, *inner)``, ``|x| <= xmax``).
    Returns ``{"n": outputs, ["u", "v"]}`` (int32 ``(total, *shape)``, channels-last)."""
    kind = ly.neuron.kind
    if ly.kind == "input":                 # an SDNN Delta encoder: the same step's values
        return _sdnn(eng, ly, (x if at is None else x[at]).long(), record_uv)
    syn = eng.synapse(ly)
    apply = ex.SYNAPSES[ly.kind][1]
    n, dev = x.shape[0], x.device
    sent = torch.arange(n, device=dev) if at is None else at       # the row sent at each step
    got = torch.cat([sent.new_full((1,), n), sent[:-1]])            # received (row n: zeros)
    qblif = kind in ("QBLIF", "CUBA", "LOIHI")
    idx = segments(got.shape[0], sched if qblif else None).to(dev)  # (B, R), -1: pads
    sel = torch.where(idx >= 0, got[idx.clamp(min=0)], n)           # rows of x_ext per slot
    x_ext = torch.cat([x, x.new_zeros((1,) + tuple(x.shape[1:]))])

    def sums(s, f):
        """The synapse's sums in the layout of ``idx``: ``(B, R, *shape)``; the product runs
        on the fewer of the distinct rows and the slots (held frames: once per frame)."""
        if x_ext.shape[0] < sel.numel():
            raw, wrap = f(s, x_ext, xmax)
            return raw.reshape((n + 1,) + tuple(raw.shape[1:]))[sel], wrap
        raw, wrap = f(s, x_ext[sel.reshape(-1)], xmax)
        return raw.reshape(tuple(sel.shape) + tuple(raw.shape[1:])), wrap

    raw, wrap = sums(syn, apply)
    if qblif:
        return _qblif(eng, ly, raw, wrap, syn.abs_sum * xmax, idx, record_uv)
    a = ex.as_int32(raw, wrap)[0]                  # one segment: the whole run
    if kind == "SDNN":
        return _sdnn(eng, ly, a.long(), record_uv)
    if kind == "ALIF":
        return _alif(eng, ly, a, record_uv)
    if kind == "RF":
        return _rf(eng, ly, a, ex.as_int32(*sums(imag_synapse(ly), ex.dense))[0])
    raise NotImplementedError(f"layer {ly.index}: the exact engine has no '{kind}' neurons")


def run(eng, frames, steps: int, *, stream: bool = False, reset: str = "sample",
        reset_interval=None, reset_offset: int = 0, record_uv: bool = False,
        layers_to_record=None, timeline: bool = False) -> dict:
    """:func:`simulate`, then (unless ``timeline``) the per-sample windows ``(S, T, *shape)``
    cut by :func:`compiler.forward.windows`, as :func:`compiler.forward.forward`."""
    from compiler.forward import windows
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
