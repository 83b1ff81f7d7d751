"""A float simulation of a NIR graph with NIR's own semantics, and the spike agreement
check of the compiled network against it.

Semantics (docs/nir.md): every node's ODE stepped by forward Euler at ``dt``, the current
before the voltage, in chain order with no delay between nodes (what the compiled
network computes within each sample's window), states zero at the start of each sample.
Per step, for synaptic input ``y`` (the op's output, bias included):

- CubaLIF: ``I += dt/tau_syn * (w_in*y - I)``; ``v += dt/tau_mem * (v_leak - v + r*I)``
- LIF: ``v += dt/tau * (v_leak - v + r*y)``;  IF: ``v += dt * r * y``
- LI (readout): as LIF, never spikes; its output is ``v``
- Threshold: spike where ``y > threshold``
- Delay: ``y(t) = y(t - d)`` per neuron (0 before the sample's first step), d in steps

then a spike where ``v > v_threshold`` and ``v = v_reset`` there. A recurrent edge
(``weight_rec``) adds ``R @ s[t-1]`` to ``y`` at step t (NIR's one-step semantics, as
snnTorch's ``RLeaky``/``RSynaptic`` and the IR's ``dense_rec``). Inputs are the frames
given to the compiled network (integers, as floats), presented unchanged every step.
"""
from __future__ import annotations

import copy

import numpy as np

from qblif.nir.graph import load, options, param, stages
from qblif.nir.linear import conv2d, synapse  # noqa: F401 (re-exported)


def neuron_run(st, y, dt) -> np.ndarray:
    """Step the stage's neuron over ``y`` ``(S, T, *shape)``: spikes (0/1) or LI voltages."""
    t_name = st.neuron_type
    n_s, steps = y.shape[:2]
    out = np.zeros_like(y)
    if t_name == "Threshold":
        return (y > param(st, "threshold")).astype(np.float64)
    cur = np.zeros((n_s,) + tuple(st.shape))
    v = np.zeros_like(cur)
    if t_name == "CubaLIF":
        a_s, a_m = dt / param(st, "tau_syn", allow_inf=True), dt / param(st, "tau_mem",
                                                                          allow_inf=True)
        w_in, r, leak = param(st, "w_in", 1.0), param(st, "r"), param(st, "v_leak", 0.0)
    elif t_name in ("LIF", "LI"):
        a_m = dt / param(st, "tau", allow_inf=True)
        r, leak = param(st, "r"), param(st, "v_leak", 0.0)
    else:  # IF
        r = param(st, "r")
    thr = None if t_name == "LI" else param(st, "v_threshold")
    reset = None if t_name == "LI" else param(st, "v_reset", 0.0)
    rec = st.weight_rec
    for t in range(steps):
        x = y[:, t]
        if rec is not None and t:          # the recurrent edge: last step's spikes
            x = x + out[:, t - 1] @ rec.T
        if t_name == "CubaLIF":
            cur = cur + a_s * (w_in * x - cur)
            v = v + a_m * (leak - v + r * cur)
        elif t_name in ("LIF", "LI"):
            v = v + a_m * (leak - v + r * x)
        else:
            v = v + dt * r * x
        if thr is None:
            out[:, t] = v
            continue
        s = v > thr
        v = np.where(s, reset, v)
        out[:, t] = s
    return out


def delayed(y, delay) -> np.ndarray:
    """``y`` ``(S, T, *shape)`` with each neuron's values ``delay`` (steps, ``shape``) later:
    ``y'[t] = y[t - d]``, 0 for ``t < d`` (NIR's ``Delay``; states are zero at the start of
    each sample)."""
    if delay is None or not np.any(delay):
        return y
    out = np.zeros_like(y)
    d = np.broadcast_to(delay, y.shape[2:])
    for k in np.unique(d):
        k = int(k)
        m = d == k
        if k < y.shape[1]:
            out[:, k:, m] = y[:, :y.shape[1] - k, m]
    return out


def simulate(path, frames, steps: int, dt=None, input_scale=None,
             weight_bits: int = 8) -> dict:
    """Float outputs ``{layer index: (S, T, *shape)}`` of every neuron layer of the NIR file
    (layer indices as in the compiled IR): spikes 0/1, or ``v`` for an LI readout.
    frames: ``(S, *input_shape)`` (the compiled network's input shape); the graph receives
    ``frames * input_scale`` (dt, input_scale: as :func:`qblif.ir.from_nir.read_nir`;
    weight_bits: as compiled, which decides fusion against relay layers). A relay layer's
    output is its op's value (the compiled relay sends it times its integer scale)."""
    graph = load(path)
    dt, _, scale = options(graph, dt, None, input_scale)
    in_shape, sts = stages(graph, weight_bits=weight_bits, dt=dt)
    x = np.asarray(frames, np.float64) * scale
    n_s = x.shape[0]
    cur = np.broadcast_to(x[:, None], (n_s, steps) + tuple(in_shape))
    out = {}
    for i, st in enumerate(sts):
        if st.kind == "flatten":
            cur = cur.reshape(n_s, steps, -1)
            continue
        if st.reset_weight is not None:     # NIR's own v_reset runs below, not the frame
            st = copy.copy(st)
            st.weight = st.weight - st.reset_weight
        y = synapse(st, cur.reshape((n_s * steps,) + tuple(st.in_shape)), bias=False)
        y = delayed(y.reshape((n_s, steps) + tuple(st.shape)), st.delay)
        if st.bias is not None:     # not delayed (a Delay after a biased op is refused)
            y = y + st.bias
        out[i] = cur = y if st.relay else neuron_run(st, y, dt)
    return out


def agreement(lava: dict, ref: dict, readouts=()) -> dict:
    """Per layer: the fraction of (sample, step, neuron) whose spike (count > 0) equals the
    float simulation's; for LI readouts, the fraction of samples whose arg-max of the summed
    voltage agrees (``lava`` holds voltages for those)."""
    res = {}
    for i, want in ref.items():
        got = np.asarray(lava[i])
        if i in readouts:
            a = got.reshape(got.shape[0], -1, int(np.prod(got.shape[2:]))).sum(1).argmax(1)
            b = want.reshape(want.shape[0], -1, int(np.prod(want.shape[2:]))).sum(1).argmax(1)
            res[i] = float(np.mean(a == b))
        else:
            res[i] = float(np.mean((got > 0) == (want > 0)))
    return res


def readout_layers(net) -> list:
    """IR indices of layers that came from an LI node (read their ``v``, not spikes)."""
    return list(net.ir.graph.get("nir_readouts", []))


def check(net, frames, steps: int, lava_out=None) -> dict:
    """Run the compiled NIR network ``net`` in Lava (unless ``lava_out``, a previous
    ``net.run`` result with ``record_uv`` for LI readouts, is given) and its float
    simulation; return ``{layer index: agreement}`` (:func:`agreement`)."""
    ro = readout_layers(net)
    if lava_out is None:
        lava_out = net.run(frames, steps, record_uv=bool(ro))
    got = {i: (lava_out[("v", i)] if i in ro else lava_out[i]) for i in lava_out
           if isinstance(i, int)}
    ref = simulate(net.ir.graph["path"], frames, steps, dt=net.ir.graph.get("nir_dt"),
                   input_scale=net.ir.graph.get("nir_input_scale"),
                   weight_bits=net.ir.graph.get("nir_weight_bits", 8))
    return agreement(got, ref, ro)
