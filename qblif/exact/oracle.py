"""Numpy forward of a compiled IR: the exact oracle of what the emitted Lava graph
computes, built from :mod:`qblif.core.reference` (spec section 1) and Lava's sigma-delta
arithmetic (mirrored below).

It simulates the streamed Lava pipeline on its global timeline, step by step, as
:mod:`qblif.passes.plan` describes it: the source sends the input of timestep t
(:func:`qblif.lava.procs.source.process.frame_at`: a frame held for its sample's T steps,
or a stream's value); an input layer with a neuron (an SDNN ``Delta`` encoder fed the
input as events, or a CUBA neuron fed it as its bias) answers in the same step; every
synapse adds one step plus its axonal delay (a neuron of a synaptic layer at step t
receives its producer's output of step ``t - 1 - delay``; a recurrent dense layer adds
its weights onto its own output of step ``t - 1``, and its per-output delays shift its
spikes instead of its input: lava-dl's output delay, docs/coverage.md); in the per-sample
mode the delay lines and the recurrent feedback forget the previous sample at the
layer's reset; each neuron resets on the
schedule :func:`qblif.schedule.reset_schedule` gives (per sample by default; SDNN
never). A layer's window for sample s is its steps ``s*T + reset_offset .. + T - 1``, as
:meth:`qblif.api.CompiledNetwork.run` reads them.
"""
from __future__ import annotations

import numpy as np

from qblif.core import numeric
from qblif.core.constants import NETX_BIAS_EXP, NETX_SDNN_EXP
from qblif.ir import in_message, layers, per_output_delays
from qblif.core.numeric import average_counts  # noqa: F401 (re-exported)
from qblif.schedule import frame_at, reset_schedule
from qblif.core import reference


SDNN_SCALE = 2 * NETX_SDNN_EXP   # spike_exp + state_exp, as emitted
INPUT_BIAS_EXP = NETX_BIAS_EXP   # stock NetX's bias_exp of an input neuron


class SDNNState:
    """Lava's sigma-delta state (``lava.proc.sdn.models``, fixed point, cum_error off)."""

    def __init__(self, ly):
        self.proc, n = ly.proc, ly.neuron
        self.vth = int(n.vth) << SDNN_SCALE
        self.bias = np.asarray(n.bias_mant, np.int64) << SDNN_SCALE
        self.sigma = self.act = self.residue = np.zeros(ly.shape, np.int64)

    def step(self, a):
        """One step on integer ``a``; the int64 message (before the int32 cast). Written with
        operators numpy arrays and torch tensors share, so that the engine's torch state
        (:class:`qblif.exact.engine.SDNNTorch`) runs this very step."""
        a = self._int64(a)
        if self.proc == "Sigma":
            self.sigma = self.sigma + a
            return self.sigma
        if self.proc == "Delta":
            act = a << SDNN_SCALE
        else:
            self.sigma = self.sigma + a
            act = self.sigma + self.bias
            act = act * (act > 0)                        # ReLU
        delta = act - self.act + self.residue
        s = delta * (abs(delta) >= self.vth)             # sent where |delta| >= vth
        self.residue, self.act = delta - s, act
        return s >> 6            # state_exp

    @staticmethod
    def _int64(a):
        return np.asarray(a, np.int64)


class ALIFState:
    """Lava's ATRLIF fixed-point state (``lava.proc.atrlif.models``), for an ALIF layer:
    u (their ``i``) and v as a LIF's; theta relaxes to ``theta_0 = vth << 6`` and r to 0 with
    12-bit decays; a spike when ``v - r >= theta``, then ``r += 2 theta`` and
    ``theta += vThStep << 6``; v is not reset."""

    def __init__(self, ly):
        n = ly.neuron
        self.n, self.a = n, n.params
        self.theta0 = np.int64(int(n.vth) << 6)
        self.u = np.zeros(ly.shape, np.int32)
        self.v = np.zeros(ly.shape, np.int32)
        self.theta = np.full(ly.shape, self.theta0, np.int64)
        self.r = np.zeros(ly.shape, np.int64)

    def step(self, a):
        n = self.n
        self.u = reference.current_update(self.u, a, n.du)
        self.v = reference.voltage_update(self.v, self.u, n.dv,
                                          reference.effective_bias(n.bias_mant, n.bias_exp))
        self.theta = reference.rtz_shift((self.theta - self.theta0) *
                                         (4096 - self.a["thDecay"])) + self.theta0
        self.r = reference.rtz_shift(self.r * (4096 - self.a["refDecay"]))
        s = (self.v.astype(np.int64) - self.r) >= self.theta
        self.r = np.where(s, self.r + 2 * self.theta, self.r)
        self.theta = np.where(s, self.theta + (int(self.a["vThStep"]) << 6), self.theta)
        return s.astype(np.int64)


class RFState:
    """Lava's RF fixed-point state (``lava.proc.rf.models.PyRFModelFixed``, state_exp 6,
    decay_bits 12), from stock NetX's parameters: inputs ``<< 6``; ``re, im`` rotate by the
    integer sin/cos decays (each product shifted right by 12, toward zero), clipped to
    ``±(2^23 - 1)``; a spike when ``re >= vth << 6`` and im crosses from negative to >= 0
    (RF_IZ, ``lava.proc.rf_iz``: when ``im >= vth << 6``, then re = 0, im = vth - 1)."""

    LIMIT = 2 ** 23 - 1

    def __init__(self, ly):
        period, alpha = numeric.rf_process_params(ly.neuron.params["sinDecay"],
                                                  ly.neuron.params["cosDecay"])
        self.sin, self.cos = numeric.rf_fixed_decays(period, alpha)
        self.vth = int(int(ly.neuron.vth) * (1 << 6))
        self.re = np.zeros(ly.shape, np.int64)
        self.im = np.zeros(ly.shape, np.int64)
        self.iz = bool(ly.neuron.params.get("izhikevich"))

    def step(self, a_re, a_im):
        def sv(x):
            return reference.rtz_shift(x, 12)
        re = sv(self.cos * self.re) - sv(self.sin * self.im) + (np.asarray(a_re, np.int64) << 6)
        im = sv(self.sin * self.re) + sv(self.cos * self.im) + (np.asarray(a_im, np.int64) << 6)
        re, im = np.clip(re, -self.LIMIT, self.LIMIT), np.clip(im, -self.LIMIT, self.LIMIT)
        if self.iz:     # RF_IZ: a spike when im reaches vth; re -> 0, im -> vth - 1
            s = im >= self.vth
            self.re, self.im = np.where(s, 0, re), np.where(s, self.vth - 1, im)
            return s.astype(np.int64)
        s = (re >= self.vth) & (im >= 0) & (self.im < 0)
        self.re, self.im = re, im
        return s.astype(np.int64)


#: neuron kinds without a state reset (Lava's ATRLIF and RF processes have none)
NO_RESET = ("ALIF", "RF")


def check_no_reset(ly, sched) -> None:
    """ValueError for an ALIF / RF layer given a reset schedule ``sched`` (not None)."""
    if ly.neuron is None or ly.neuron.kind not in NO_RESET or sched is None:
        return
    what = "ALIF (Lava's ATRLIF)" if ly.neuron.kind == "ALIF" else \
        "resonate-and-fire (Lava's RF)"
    raise ValueError(f"layer {ly.index}: {what} has no state reset: use reset='none'")


def last_clear(sched, tau: int) -> int:
    """The latest 0-based step ``<= tau`` at which a delay line on schedule ``sched``
    (``(interval, offset)`` or None) forgot its contents (-1: never)."""
    if sched is None:
        return -1
    interval, offset = sched
    return tau - ((tau + 1 - offset) % interval)


def _delayed_output(res, delay, sched):
    """lava-dl's output delay of a ``dense_rec`` layer: ``res`` (``(total, *shape)``) with
    neuron j's spikes ``delay[j]`` steps later; a line on ``sched`` drops what was sent
    before its last clear (:class:`qblif.lava.procs.delay_line.DelayLine`)."""
    out = np.zeros_like(res)
    cols = np.arange(res.shape[1])
    for tau in range(res.shape[0]):
        src = tau - delay
        ok = src >= max(last_clear(sched, tau), 0)
        out[tau] = np.where(ok, res[np.maximum(src, 0), cols], 0)
    return out


def synaptic_input_at(ly, hist, tau, clear=-1, undelayed=False):
    """Synaptic input of ``ly`` at 0-based step ``tau`` from its producer's outputs ``hist``
    (``(total, *in_shape)``): ``synapse(hist[tau - 1 - delay])``, per neuron delay; a
    per-output delay line that forgot its contents at step ``clear`` passes only what it
    received from then on (``tau - delay >= clear``). undelayed: ignore ``ly.delay`` (a
    dense_rec layer delays its output instead)."""
    if ly.delay is None or undelayed:
        x = hist[tau - 1] if tau >= 1 else np.zeros(hist.shape[1:], hist.dtype)
        return numeric.synapse(ly, x).reshape(ly.shape)
    if ly.kind == "dense":     # gather x[tau - 1 - D[o, i], i] per synapse
        flat = hist.reshape(hist.shape[0], -1)
        src = tau - 1 - ly.delay
        ok = (src >= 0) & (src + 1 >= clear)
        x = np.where(ok, flat[np.maximum(src, 0), np.arange(flat.shape[1])], 0)
        return numeric.wrap_synapse(ly, (np.asarray(ly.weight, np.int64) * x).sum(axis=1))
    total = np.zeros(ly.shape, np.int64)
    for d in np.unique(ly.delay):
        src = tau - 1 - int(d)
        if src >= 0 and tau - int(d) >= clear:
            total += np.where(ly.delay == d, numeric.synapse(ly, hist[src]).reshape(ly.shape), 0)
    return numeric.wrap_synapse(ly, total)


def simulate(g, frames, steps: int, *, stream: bool = False, reset: str = "sample",
             reset_interval=None, reset_offset: int = 0, record_uv: bool = False) -> dict:
    """Every layer's outputs on the global timeline: ``{index: (total, *shape)}`` (and
    ``("u", i)``, ``("v", i)`` with ``record_uv``) for ``total = S*T + depth`` steps.

    frames: ints ``(S, *input_shape)`` held for T = ``steps`` steps each, or with ``stream``
    ``(S, T_in, *input_shape)``. reset / reset_interval / reset_offset:
    :func:`qblif.schedule.reset_schedule`."""
    frames = np.asarray(frames, np.int64)
    total = frames.shape[0] * int(steps) + int(g.graph["depth"])
    if record_uv and any(ly.neuron is not None and ly.neuron.kind == "SDNN"
                         for ly in layers(g)):
        raise NotImplementedError("SDNN layers have no u, v states to record")
    src = np.stack([frame_at(frames, t, steps, stream) for t in range(1, total + 1)])
    out, cur = {}, src
    for ly in layers(g):
        if ly.kind == "flatten":
            cur = cur.reshape(total, -1)
            continue
        if ly.kind == "input" and ly.neuron is None:
            continue
        if ly.kind == "average":
            out[ly.index] = average_counts(cur, ly.shape[0])
            continue
        n = ly.neuron
        sched = reset_schedule(g, ly, steps, reset, reset_interval, reset_offset)
        res = np.zeros((total,) + tuple(ly.shape), np.int64)
        us = np.zeros_like(res) if record_uv else None
        vs = np.zeros_like(res) if record_uv else None
        sd = SDNNState(ly) if n.kind == "SDNN" else None
        shift = in_message(g, ly.index).scale_exp if ly.kind != "input" else 0
        graded = n.kind == "CUBA" and bool(n.raw.get("gradedSpike"))
        # a per-output delay line (qblif.lava.emit): forgets with its neuron in the sample
        # mode; on a dense_rec layer it delays the spikes (out_delay), else the input
        per_out = per_output_delays(ly.delay, ly.kind) if ly.kind != "input" else None
        line = sched if reset == "sample" and per_out is not None else None
        out_delay = per_out if ly.weight_rec is not None else None
        gate = sched if reset == "sample" else None
        check_no_reset(ly, sched)
        st = ALIFState(ly) if n.kind == "ALIF" else RFState(ly) if n.kind == "RF" else \
            reference.QBLIFState.zeros(ly.shape)
        for tau in range(total):
            if ly.kind == "input":
                a = cur[tau]                     # same step: events (Delta) or bias
            else:
                a = synaptic_input_at(ly, cur, tau, last_clear(line, tau), out_delay is not None)
                if shift:       # a graded-spike CUBA's payload: Dense's exponent, floor
                    a = np.right_shift(a.astype(np.int64), shift)
                if ly.weight_rec is not None and tau >= 1 \
                        and not (gate is not None and last_clear(gate, tau) == tau):
                    # its own output, one step on (the sample mode drops it on a reset step)
                    a = a.astype(np.int64) + numeric.wrap_synapse(
                        ly, np.asarray(ly.weight_rec, np.int64) @ res[tau - 1])
            if sd is not None:
                res[tau] = sd.step(a)
                continue
            if n.kind == "ALIF":
                res[tau] = st.step(a)
            elif n.kind == "RF":
                x = cur[tau - 1] if tau >= 1 else np.zeros(cur.shape[1:], cur.dtype)
                res[tau] = st.step(a, numeric.wrap_synapse(
                    ly, np.asarray(ly.weight_imag, np.int64) @ np.asarray(x, np.int64).reshape(-1)))
                continue
            else:
                if sched is not None and (tau + 1) % sched[0] == sched[1] % sched[0]:
                    st = reference.QBLIFState.zeros(ly.shape)
                if graded:
                    res[tau] = numeric.graded_step(st, a, du=n.du, dv=n.dv, vth=n.vth,
                                                   bias_mant=n.bias_mant, bias_exp=n.bias_exp)
                    if record_uv:
                        us[tau], vs[tau] = st.u, st.v
                    continue
                bias, exp = (a, INPUT_BIAS_EXP) if ly.kind == "input" else \
                    (n.bias_mant, n.bias_exp)                # an input neuron: driven by its bias
                res[tau] = reference.step(st, 0 if ly.kind == "input" else a, du=n.du,
                                          dv=n.dv, vth=n.vth, bias_mant=bias, bias_exp=exp,
                                          max_burst=n.max_burst, reset_mode=n.reset_mode)
            if record_uv:
                us[tau], vs[tau] = st.u, st.v
        if out_delay is not None:
            res = _delayed_output(res, np.asarray(out_delay, np.int64), line)
        out[ly.index] = cur = res
        if record_uv and sd is None and n.kind != "RF":
            out[("u", ly.index)], out[("v", ly.index)] = us, vs
    return out


def input_steps(frames, steps: int, stream: bool) -> np.ndarray:
    """What the source sends on each step of each sample: ``(S, T, *shape)``."""
    frames = np.asarray(frames)
    return np.stack([np.stack([frame_at(frames, s * steps + j + 1, steps, stream)
                               for j in range(steps)]) for s in range(frames.shape[0])])


def windows(g, timeline: dict, samples: int, steps: int) -> dict:
    """Cut global timelines into per-sample windows ``(S, T, *shape)`` int32: layer i's
    steps ``s*T + reset_offset - 1 + j`` (0-based)."""
    out = {}
    for key, series in timeline.items():
        ly = g.nodes[key if isinstance(key, int) else key[1]]["layer"]
        cols = np.arange(samples)[:, None] * steps + ly.reset_offset - 1 + np.arange(steps)
        out[key] = series[cols].astype(np.int32)
    return out


def forward(g, frames, steps: int, record_uv: bool = False, **modes) -> dict:
    """frames: ints ``(samples, *input_shape)`` (or a stream, ``stream=True``). Returns
    ``{layer index: counts}`` with counts int32 ``(samples, steps, *shape)`` for every
    neuron layer (SDNN layers: the graded messages; an input layer with a neuron is layer
    0), and, with ``record_uv``, ``{("u", i): ..., ("v", i): ...}`` of the same shapes
    (SDNN nets: NotImplementedError). ``modes``: :func:`simulate`'s keywords."""
    frames = np.asarray(frames)
    tl = simulate(g, frames, steps, record_uv=record_uv, **modes)
    return windows(g, tl, frames.shape[0], steps)
