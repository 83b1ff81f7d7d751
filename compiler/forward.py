"""Numpy forward of a compiled IR: the exact oracle of what the emitted Lava graph
computes, built from :mod:`qblif_lava.reference` (spec section 1).

Per sample, every neuron layer runs T steps from zero state; its step j receives
the synaptic sum of the previous layer's counts at step j (the input frame,
unchanged, at every step). See :mod:`compiler.passes.plan` for why this is the
streamed Lava pipeline's semantics.

SDNN layers (Lava's sigma-delta models, fixed point, mirrored here) are never reset:
their state runs on from sample to sample, and also through the ``depth`` steps before
the layer's first window, where it sees what the upstream layers emit before theirs
(zero unless a bias drives them). Those warm-up steps are simulated too (every layer's,
with its periodic resets), so the oracle is exact for any mix of layers.
"""
from __future__ import annotations

import numpy as np

from compiler import numeric
from compiler.ir import layers
from qblif_lava import reference


SDNN_SCALE = 6 + 6   # spike_exp + state_exp (compiler.emit)


class SDNNState:
    """Lava's sigma-delta state (``lava.proc.sdn.models``, fixed point, cum_error off)."""

    def __init__(self, ly):
        self.proc, n = ly.proc, ly.neuron
        self.vth = int(n.vth) << SDNN_SCALE
        self.bias = np.asarray(n.bias_mant, np.int64) << SDNN_SCALE
        self.sigma = self.act = self.residue = np.zeros(ly.shape, np.int64)

    def step(self, a):
        a = np.asarray(a, np.int64)
        if self.proc == "Sigma":
            self.sigma = self.sigma + a
            return self.sigma
        if self.proc == "Delta":
            act = a << SDNN_SCALE
        else:
            self.sigma = self.sigma + a
            act = np.maximum(self.sigma + self.bias, 0)
        delta = act - self.act + self.residue
        s = np.where(np.abs(delta) >= self.vth, delta, 0)
        self.residue, self.act = delta - s, act
        return s >> 6            # state_exp


def _warmup(ly, a_in, steps):
    """Outputs of ``ly`` on global steps ``1..len(a_in)`` (before its first window), and
    the SDNN state it enters its window with (None for QB-LIF/CUBA, reset there)."""
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


def forward(g, frames, steps: int, record_uv: bool = False) -> dict:
    """frames: ints ``(samples, *input_shape)``. Returns ``{layer index: counts}`` with
    counts int32 ``(samples, steps, *shape)`` for every neuron layer (SDNN layers: the
    graded messages; an SDNN input encoder is layer 0), and, with ``record_uv``,
    ``{("u", i): ..., ("v", i): ...}`` of the same shapes (SDNN nets: NotImplementedError)."""
    frames = np.asarray(frames, np.int64)
    n_s = frames.shape[0]
    if record_uv and any(ly.neuron is not None and ly.neuron.kind == "SDNN"
                         for ly in layers(g)):
        raise NotImplementedError("SDNN layers have no u, v states to record")
    out = {}
    # the values flowing out of the previous layer, (samples, steps, *shape), and what it
    # emitted on the global steps before its first window (1..depth)
    cur = np.broadcast_to(frames[:, None], (n_s, steps) + frames.shape[1:])
    warm = []
    for ly in layers(g):
        if ly.kind == "input":
            if ly.neuron is not None:    # SDNN delta encoder, depth 0: no warm-up
                st = SDNNState(ly)
                cur = np.stack([np.stack([st.step(cur[s, t]) for t in range(steps)])
                                for s in range(n_s)]).astype(np.int32)
                out[ly.index] = cur
            continue
        if ly.kind == "flatten":
            cur = cur.reshape(n_s, steps, -1)
            warm = [w.reshape(-1) for w in warm]
            continue
        n = ly.neuron
        a_warm = [np.zeros(ly.shape, np.int64)] + \
            [numeric.synapse(ly, w).reshape(ly.shape) for w in warm]
        warm, sd = _warmup(ly, a_warm, steps)
        if sd is not None:
            counts = np.zeros((n_s, steps) + tuple(ly.shape), np.int32)
            for s in range(n_s):
                for t in range(steps):
                    counts[s, t] = sd.step(numeric.synapse(ly, cur[s, t]).reshape(ly.shape))
            out[ly.index] = cur = counts
            continue
        states = [reference.QBLIFState.zeros(ly.shape) for _ in range(n_s)]
        counts = np.zeros((n_s, steps) + tuple(ly.shape), np.int32)
        us = np.zeros_like(counts) if record_uv else None
        vs = np.zeros_like(counts) if record_uv else None
        for s in range(n_s):
            for t in range(steps):
                a = numeric.synapse(ly, cur[s, t]).reshape(ly.shape)
                counts[s, t] = reference.step(
                    states[s], a, du=n.du, dv=n.dv, vth=n.vth, bias_mant=n.bias_mant,
                    bias_exp=n.bias_exp, max_burst=n.max_burst, reset_mode=n.reset_mode)
                if record_uv:
                    us[s, t], vs[s, t] = states[s].u, states[s].v
        out[ly.index] = counts
        if record_uv:
            out[("u", ly.index)], out[("v", ly.index)] = us, vs
        cur = counts
    return out
