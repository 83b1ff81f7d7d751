"""NIR's continuous-time float parameters -> Loihi fixed point (the rules of docs/nir.md).

Every neuron node is discretised with forward Euler at step ``dt`` in the order Lava's
CUBA neuron runs (current first, then voltage from the new current, spike when
``v > v_threshold``, reset to 0), which gives per layer, in NIR units:

- ``alpha_u``: the fraction of the current lost per step (CubaLIF ``dt/tau_syn``; 1 for
  LIF, IF, LI and Threshold, which have no synaptic current);
- ``alpha_v``: the fraction of the voltage lost per step (CubaLIF ``dt/tau_mem``, LIF/LI
  ``dt/tau``, IF 0, Threshold 1);
- ``gain``: what one unit of synaptic input adds to the voltage path (CubaLIF
  ``(dt/tau_syn) * w_in * (dt/tau_mem) * r``, LIF/LI ``dt * r / tau``, IF ``dt * r``,
  Threshold 1), folded into the weights: ``W_eff = gain * W``;
- ``bias_v``: what is added to the voltage every step (``dt/tau * v_leak`` plus
  ``gain * b`` for an Affine/Conv bias ``b``);
- ``theta``: ``v_threshold``.

Fixed point (spec section 1; weight units 2^-6 of a SLAYER weight): with a per-layer scale
``s`` (spikes are unchanged when weights, threshold and bias are all scaled by s),
``w_int = W_eff * 64 * s`` on the grid of ``weight_bits`` (step ``2**(9 - bits)`` in
[-256, 256 - step], 8 bits: even integers), ``vth = theta * 64 * s`` (17-bit, >= 1),
``bias = bias_v * 64 * s`` (13-bit NetX bias, applied as ``bias << 6``),
``iDecay = du + 1 = round(4096 * alpha_u)``, ``dv = round(4096 * alpha_v)`` (both capped at
4095 / 4096). ``s = 1`` when that is exact; otherwise the largest s with every weight,
threshold and bias in range. The report gives every parameter's error and the
headroom of u (24-bit wrap) and v (24-bit clip).
"""
from __future__ import annotations

import math

import numpy as np

from qblif.core.errors import CompileError
from qblif.nir.graph import array, fail, param
from qblif.core import params as P

STATE_LIMIT = 2 ** 23 - 1
DECAY_ONE = 4096
EXACT_RTOL = 1e-6   # float32 NIR files: a value this close to the grid counts as exact


def decay_fractions(st, dt: float) -> dict:
    """``alpha_u``, ``alpha_v``, ``gain`` (per-neuron arrays of the stage shape), ``bias_v``,
    ``theta`` (arrays or None) of a stage's neuron in NIR float units (module docstring)."""
    n, name, t = st.neuron, st.name, st.neuron_type
    shape = st.shape

    def par(attr, default=None, allow_inf=False, positive=False):
        return param(st, attr, default, allow_inf, positive)

    one = np.ones(shape)
    if t == "CubaLIF":
        tau_s, tau_m = par("tau_syn", positive=True, allow_inf=True), \
            par("tau_mem", positive=True, allow_inf=True)
        au, av = dt / tau_s, dt / tau_m
        gain = au * par("w_in", 1.0) * av * par("r")
        leak = av * par("v_leak", 0.0)
    elif t in ("LIF", "LI"):
        tau = par("tau", positive=True, allow_inf=True)
        au, av = one, dt / tau
        gain = av * par("r")
        leak = av * par("v_leak", 0.0)
    elif t == "IF":
        au, av = one, 0 * one
        gain = dt * par("r")
        leak = 0 * one
    else:   # Threshold: a stateless comparator
        au, av, gain, leak = one, one, one, 0 * one
    theta = None
    if t == "Threshold":
        theta = par("threshold")
    elif t != "LI":
        theta = par("v_threshold")
        if getattr(n, "v_reset", None) is not None and np.any(par("v_reset") != 0):
            if st.reset_weight is None:
                raise fail(name, n, "v_reset != 0 is not representable (Loihi CUBA resets to "
                           "0)")
            shift = par("v_reset")      # the frame v' = v - v_reset (graph._sources)
            theta, leak = theta - shift, leak - av * shift
    if theta is not None and np.any(theta <= 0):
        raise fail(name, n, "v_threshold must be > 0 (Loihi thresholds are positive; with "
                   "v_reset != 0, v_threshold - v_reset)")
    if not np.all(np.isfinite(gain)) or not np.all(np.isfinite(leak)):
        raise fail(name, n, "the parameters give an infinite or undefined input gain or leak")
    bias_v = leak.copy()
    if st.bias is not None and np.any(st.bias):
        if np.any(au != 1):
            raise fail(name, n, f"the bias of {st.ops[0]!r} ({st.kind}) feeds the synaptic "
                       "current of a CubaLIF with tau_syn != dt; Loihi adds biases to the "
                       "voltage. A dense op's bias goes through an always-on source neuron; a "
                       f"{st.kind}'s cannot (zero padding: the bias is not one column per "
                       "channel), so this is not representable (no bias, or tau_syn = dt)")
        bias_v = bias_v + gain * st.bias
    for key, a in (("alpha_u", au), ("alpha_v", av)):
        if np.ptp(a) != 0:
            raise fail(name, n, f"per-neuron time constants ({key} varies) are unsupported: "
                       "Loihi decays are per layer")
        if a.reshape(-1)[0] > 1 + 1e-9:
            raise fail(name, n, f"dt={dt} exceeds the time constant ({key}="
                       f"{a.reshape(-1)[0]:.4g} > 1): forward Euler is unstable")
    return dict(alpha_u=float(au.reshape(-1)[0]), alpha_v=float(av.reshape(-1)[0]),
                gain=gain, bias_v=bias_v, theta=theta)


def effective_weight(st, gain) -> np.ndarray:
    """The stage weight with the per-neuron gain folded in (file order, NIR units)."""
    w = st.weight
    if st.kind == "dense":
        return w * gain.reshape(-1, 1)
    per_c = gain.reshape(gain.shape[0], -1)
    if np.any(np.ptp(per_c, axis=1) != 0):
        raise fail(st.name, st.neuron, "per-neuron input gains (r, w_in, tau) that vary "
                   "inside a channel cannot be folded into shared conv weights")
    if st.kind == "conv":
        return w * per_c[:, 0].reshape(-1, 1, 1, 1)
    if np.ptp(per_c[:, 0]) != 0:
        raise fail(st.name, st.neuron, "per-channel input gains cannot be folded into one "
                   "pooling kernel")
    return w * per_c[0, 0]


def _close(q, f) -> bool:
    return bool(np.all(np.abs(q - f) <= EXACT_RTOL * np.maximum(np.abs(f), 1.0)))


def _grid(x, step, lo, hi):
    return np.clip(step * np.round(x / step), lo, hi)


def _rel_err(q, f):
    f = np.asarray(f, np.float64)
    big = float(np.max(np.abs(f))) if f.size else 0.0
    return float(np.max(np.abs(q - f)) / big) if big > 0 else float(np.max(np.abs(q)))


def quantize_stage(st, dt: float, weight_bits: int, in_max: int,
                   guarantee: bool = True, in_unit: float = 1.0,
                   held_input: bool = False) -> dict:
    """Integer parameters of one stage and its error report. ``guarantee``: lower the scale
    until the worst-case state fits 24 bits (``False``, ``--allow-inexact``: the most
    precise scale in range, whatever the headroom). ``in_unit``: the stage's input arrives
    multiplied by it (a relay layer before it sends ``c * y``): the forward weights are
    divided by it. ``held_input``: the stage's forward input is the network input, one frame
    held for the whole sample from zero state (:func:`headroom`); the report's
    ``held_input`` says whether the scale relied on it.

    Returns ``dict(weight=int64, vth=int64 array (shape), bias=int64 array or None, du, dv,
    report=dict)``. weight: file order (dense (out, in), conv (C_out, C_in/g, kH, kW),
    pool (kH, kW)) in 2^-6 weight units; vth: mantissa (threshold = vth << 6).
    """
    if not 1 <= weight_bits <= 8:
        raise CompileError(f"weight_bits={weight_bits} is out of range [1, 8]")
    f = decay_fractions(st, dt)
    w_eff = effective_weight(st, f["gain"]) / in_unit
    n_fwd = w_eff.shape[1] if w_eff.ndim == 2 else None
    if st.weight_rec is not None:     # one scale for both: the same neuron sums them
        w_eff = np.concatenate([w_eff, st.weight_rec * f["gain"].reshape(-1, 1)], axis=1)
    step = 2 ** (9 - weight_bits)
    w_lo, w_hi = P.WEIGHT_RANGE[0], P.WEIGHT_RANGE[1] + 1 - step
    w64, b64 = w_eff * 64, f["bias_v"] * 64
    readout = f["theta"] is None
    th64 = None if readout else f["theta"] * 64
    vth_hi, (b_lo, b_hi) = P.VTH_RANGE[1], P.BIAS_MANT_RANGE

    def ints(s):
        w = _grid(w64 * s, step, w_lo, w_hi)
        b = np.clip(np.round(b64 * s), b_lo, b_hi)
        v = None if readout else np.clip(np.round(th64 * s), 1, vth_hi)
        return w, v, b

    def exact(s):   # equal up to float rounding of the NIR parameters (EXACT_RTOL)
        w, v, b = ints(s)
        return (_close(w, w64 * s) and _close(b, b64 * s)
                and (readout or _close(v, th64 * s)))

    iu = int(np.clip(np.round(DECAY_ONE * f["alpha_u"]), 1, DECAY_ONE))
    dv = int(np.clip(np.round(DECAY_ONE * f["alpha_v"]), 0, DECAY_ONE - 1))

    def bound(w, b, v):
        rec = None if st.weight_rec is None else w[:, n_fwd:]
        return headroom(st.kind, w if rec is None else w[:, :n_fwd], b, iu - 1, dv, in_max,
                        v, rec, held_input=held_input)

    def room(s):    # the smaller headroom (bits) of the quantized layer at scale s
        w, v, b = ints(s)
        return room_bits(bound(w, b, v))

    s, limit = _choose_scale(w64, b64, th64, step, exact, room, guarantee)
    w, v, b = ints(s)
    if readout:
        v = np.full(st.shape, vth_hi)
    if not np.any(w):
        raise fail(st.name, st.neuron, f"every weight of {st.ops[0]!r} rounds to 0 at "
                   f"{weight_bits} weight bits (scale {s:.4g}): the layer would be silent")
    rep = dict(node=st.name, type=st.neuron_type, op=st.op_types[0], scale=s, limit=limit,
               exact=bool(exact(s) and _close(iu / DECAY_ONE, f["alpha_u"])
                          and _close(dv / DECAY_ONE, f["alpha_v"])),
               err=dict(weight=_rel_err(w / (64 * s), w_eff),
                        vth=0.0 if readout else _rel_err(v / (64 * s), f["theta"]),
                        bias=_rel_err(b / (64 * s), f["bias_v"]),
                        du=abs(iu / DECAY_ONE - f["alpha_u"]),
                        dv=abs(dv / DECAY_ONE - f["alpha_v"])))
    rep.update(bound(w, b, None if readout else v))
    rep["held_input"] = bool(held_input and guarantee and room_bits(rep) >= 0 and room_bits(
        headroom(st.kind, w if st.weight_rec is None else w[:, :n_fwd], b, iu - 1, dv, in_max,
                 None if readout else v, None if st.weight_rec is None else w[:, n_fwd:]))
        < 0)
    bias = b.astype(np.int64) if np.any(b) else None
    w = w.astype(np.int64)
    rec = None if st.weight_rec is None else w[:, n_fwd:]
    return dict(weight=w if rec is None else w[:, :n_fwd], weight_rec=rec,
                vth=v.astype(np.int64), bias=bias, du=iu - 1, dv=dv, report=rep)


def _choose_scale(w64, b64, th64, step, exact, room, guarantee=True) -> tuple:
    """The layer scale ``s`` and what chose it: ``exact`` (s = 1, or a power of two, exact
    and inside the headroom), ``range`` (the largest s with every weight, threshold and bias
    in range), ``headroom`` (the largest s whose worst-case |u| and |v| stay below 2^23),
    ``no room`` (even the smallest useful s, where the smallest threshold mantissa is 1 and
    the largest weight at least one grid step, overflows: the caller refuses). Without
    ``guarantee`` the headroom is not consulted (steps 1 and 2 only).
    ``room(s)``: the headroom in bits at scale s."""
    if exact(1.0) and (room(1.0) >= 0 or not guarantee):
        return 1.0, "exact"
    limits = [lim / float(np.max(np.abs(x))) for lim, x in
              ((P.WEIGHT_RANGE[1] + 1 - step, w64), (P.BIAS_MANT_RANGE[1], b64),
               (P.VTH_RANGE[1], th64))
              if x is not None and np.any(x)]
    s = min(limits) if limits else 1.0
    if room(s) >= 0 or not guarantee:
        return s, "range"
    useful = step / float(np.max(np.abs(w64)))      # the largest weight: one grid step
    if th64 is not None:                            # the smallest threshold mantissa: 1
        useful = max(useful, 1.0 / float(np.min(th64)))
    for _ in range(16):         # room(s) shrinks by log2 of the scale (up to rounding)
        s = s * 2.0 ** min(room(s), -1e-3)
        if s < useful:
            return useful, "no room"
        if room(s) >= 0:
            break
    two = 2.0 ** math.floor(math.log2(s))
    if exact(two) and room(two) >= 0 and two >= useful:
        return two, "exact"
    wmax = float(np.max(np.abs(w64)))       # the largest weight on a grid point (uniform
    snap = math.floor(wmax * s / step) * step / wmax        # kernels, e.g. pooling: exact)
    return (snap, "headroom") if snap >= useful else (s, "headroom")


def headroom(kind, w, bias, du, dv, in_max, vth=None, w_rec=None,
             held_input: bool = False) -> dict:
    """Bits to spare below 2^23 of the worst-case |u| (wraps) and |v| (clips) of a layer.

    Inputs are >= 0 (frames, spike counts) and at most ``in_max``; per neuron, ``a+`` /
    ``a-`` = ``in_max`` times the sum of its positive / negative weights (weight units),
    ``|u| <= 64 a * 4096 / (du + 1)``. Above: ``v <= 64 vth + u+ + 64 bias+``, and a clip
    there is harmless (the NIR neurons are K = 1 with reset to 0: a voltage over the
    threshold spikes and resets whatever its value; without ``vth``, a readout:
    ``(u+ + 64 bias+) * 4096 / dv``); below: ``|v| <= (u- + 64 |bias-|) * 4096 / dv``
    (unbounded when ``dv = 0``: ``no leak``, v is bounded by its clip only). ``w_rec``: the
    recurrent weights ``(out, out)`` of the layer's own spikes (at most 1 each: NIR's K = 1).

    ``held_input`` (the first layer of a run whose frames are held for the whole sample and
    whose states start at zero, ``qblif``'s default run): the clip below is then harmless
    unless the recurrent input alone can undo it, and the bound below counts only that.
    The forward part of u relaxes monotonically from 0 to a constant of one sign, so
    ``c = u + 64 bias`` (what is added to v) moves only by the recurrent part, within
    ``[-r-, r+]`` (``r`` as ``u``, from ``w_rec``): a neuron whose forward part is >= 0
    has ``v >= -(r- + 64 bias-) * 4096 / dv`` (must fit); one whose forward part is
    <= 0 reaches the clip only when ``c < -2^23 dv / 4096``, and afterwards spikes (where
    Lava, whose clipped v is the higher, could spike first) only when ``c > 64 vth dv /
    4096``: impossible when ``(r+ + r-) * 4096 / dv <= 2^23 + 64 vth``. Without recurrence
    the bound below is the bias term alone. ``|u|`` (wraps) keeps its full bound, and so
    does a readout (no ``vth``: its v is the output).
    """
    w = np.asarray(w, np.float64)
    rows = in_max * (w.reshape(w.shape[0], -1) if kind in ("dense", "conv")
                     else w.reshape(1, -1))
    if w_rec is not None:
        rows = np.concatenate([rows, np.asarray(w_rec, np.float64)], axis=1)
    gain = 64 * DECAY_ONE / (du + 1)
    u_pos = gain * float(np.clip(rows, 0, None).sum(1).max())
    u_neg = gain * float(np.clip(-rows, 0, None).sum(1).max())
    b = np.asarray(0.0 if bias is None or not np.size(bias) else bias, np.float64)
    b_pos, b_neg = 64 * float(np.clip(b, 0, None).max()), 64 * float(np.clip(-b, 0, None).max())

    def leaky(x):
        return (x * DECAY_ONE / dv) if dv else (math.inf if x > 0 else 0.0)

    v_pos = leaky(u_pos + b_pos) if vth is None else \
        min(64 * float(np.max(vth)) + u_pos + b_pos, STATE_LIMIT)
    v_neg = leaky(u_neg + b_neg)
    if held_input and vth is not None:     # (a readout's v is its output)
        rec = np.zeros((1, 1)) if w_rec is None else np.asarray(w_rec, np.float64)
        r_pos = gain * float(np.clip(rec, 0, None).sum(1).max())
        r_neg = gain * float(np.clip(-rec, 0, None).sum(1).max())
        v_neg = leaky(r_neg + b_neg)
        if r_pos + r_neg > 0:       # the swing that could climb back from the clip
            th = 64 * float(np.min(vth)) if vth is not None else 0.0
            v_neg = max(v_neg, leaky(r_pos + r_neg) - th)
    u, v = max(u_pos, u_neg), max(v_pos, v_neg)

    def bits(x):
        return math.inf if x <= 0 else -math.inf if math.isinf(x) else math.log2(STATE_LIMIT / x)

    return dict(u_bound=u, v_bound=v, headroom_u_bits=bits(u), headroom_v_bits=bits(v))


def room_bits(rep: dict) -> float:
    """The smaller finite headroom (bits) of a report row; +inf when neither is finite."""
    vals = [x for x in (rep["headroom_u_bits"], rep["headroom_v_bits"]) if x > -math.inf]
    return min(vals) if vals else math.inf


def headroom_problem(rep: dict):
    """One line naming the node and the figure when the layer's worst case overflows 24
    bits (``qblif`` refuses it unless ``--allow-inexact``), else None."""
    bits = room_bits(rep)
    if bits >= 0:
        return None
    which = "u (24-bit wrap)" if rep["headroom_u_bits"] < 0 else "v (24-bit clip)"
    where = ("even at the smallest useful scale ({:.3g}: threshold mantissa >= 1, largest "
             "weight >= one grid step)" if rep.get("limit") == "no room" else
             "at the most precise scale ({:.3g}; the headroom did not lower it)")
    return (f"NIR node {rep['node']!r} ({rep['type']}): the worst-case {which} exceeds 2^23 "
            f"by {-bits:.1f} bits {where.format(rep['scale'])}: the quantized layer cannot "
            "hold its dynamics")


def text_report(rows: list, dt: float, weight_bits: int) -> str:
    """The per-layer quantization table (rows: the ``report`` dicts, with ``index``)."""
    hdr = (f"{'layer':<6}{'NIR node':<18}{'type':<10}{'scale':>9}{'w err':>9}{'vth err':>9}"
           f"{'bias err':>9}{'du err':>9}{'dv err':>9}{'u room':>8}{'v room':>8}  exact  "
           "scale set by")
    lines = [f"NIR quantization: dt={dt:g}, {weight_bits}-bit weights (errors: weights, "
             "thresholds, biases relative to the layer's largest; decays absolute; room: bits "
             "below 2^23 of the worst-case |u| and |v|; 'no leak': dv = 0, v is bounded by "
             "its clip only)", hdr, "-" * len(hdr)]
    for r in rows:
        e = r["err"]
        room = [f"{x:>8.1f}" if math.isfinite(x) else f"{'inf' if x > 0 else 'no leak':>8}"
                for x in (r["headroom_u_bits"], r["headroom_v_bits"])]
        lines.append(f"{r['index']:<6}{r['node'][:17]:<18}{r['type']:<10}{r['scale']:>9.3g}"
                     f"{e['weight']:>9.2e}{e['vth']:>9.2e}{e['bias']:>9.2e}{e['du']:>9.2e}"
                     f"{e['dv']:>9.2e}{room[0]}{room[1]}  {'yes' if r['exact'] else 'no ':<5}"
                     f"{r.get('limit', '')}")
        lines += [f"      {note}" for note in r.get("fused", [])]
        if headroom_problem(r):
            lines.append(f"      warning: u or v may overflow 24 bits in layer {r['index']}")
    return "\n".join(lines)
