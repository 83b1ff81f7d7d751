"""Numpy forward of a compiled IR: the exact oracle of what the emitted Lava graph
computes, built from :mod:`qblif_lava.reference` (spec section 1).

Per sample, every neuron layer runs T steps from zero state; its step j receives
the synaptic sum of the previous layer's counts at step j (the input frame,
unchanged, at every step). See :mod:`compiler.passes.plan` for why this is the
streamed Lava pipeline's semantics.
"""
from __future__ import annotations

import numpy as np

from compiler import numeric
from compiler.ir import layers
from qblif_lava import reference


def forward(g, frames, steps: int, record_uv: bool = False) -> dict:
    """frames: ints ``(samples, *input_shape)``. Returns ``{layer index: counts}`` with
    counts int32 ``(samples, steps, *shape)`` for every neuron layer (and, with
    ``record_uv``, ``{("u", i): ..., ("v", i): ...}`` of the same shapes)."""
    frames = np.asarray(frames, np.int64)
    n_s = frames.shape[0]
    out = {}
    # the values flowing out of the previous layer, (samples, steps, *shape)
    cur = np.broadcast_to(frames[:, None], (n_s, steps) + frames.shape[1:])
    for ly in layers(g):
        if ly.kind == "input":
            continue
        if ly.kind == "flatten":
            cur = cur.reshape(n_s, steps, -1)
            continue
        n = ly.neuron
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
