"""Burst lowering to the chosen encoding (spec section 4).

``graded``: one event per neuron and step, payload n; the synapse is given
``num_message_bits = bits`` and adds ``w * n``.

``binary``: a value in 0..M travels on M one-bit lanes in thermometer code
(lane j fires when n > j) and every lane goes through the same weights, so the
synapse adds ``w`` once per unit event. Lanes are interleaved neuron-major:
1-D index ``i * M + j``; 3-D channel ``c * M + j`` (which keeps conv groups
intact). The synapse weights are tiled accordingly (``np.repeat`` over the
input axis). M = 1 (CUBA, K = 1) needs no lanes.

SDNN outputs (signed graded values, up to ``messageBits`` bits) have no thermometer
code: they stay graded (``num_message_bits = messageBits``) under ``binary`` too; the
graph attribute ``graded_sdnn_edges`` lists those edges for the report.

Sets ``layer.syn = dict(weight=<Lava layout>, message_bits=, lanes=, groups=)``.
"""
from __future__ import annotations

import numpy as np

from compiler.errors import CompileError
from compiler.ir import layers

ENCODINGS = ("graded", "binary")


def lava_conv_weight(w_file: np.ndarray) -> np.ndarray:
    """File order ``(C_out, C_in, kH, kW)`` -> Lava ``Conv`` order ``(C_out, kW, kH, C_in)``,
    spatially flipped (Lava convolves, torch correlates), exactly as NetX does."""
    return np.ascontiguousarray(w_file[:, :, ::-1, ::-1].transpose(0, 3, 2, 1))


def lower_bursts(g):
    enc = g.graph.get("encoding", "graded")
    if enc not in ENCODINGS:
        raise CompileError(f"unknown encoding {enc!r} (expected graded or binary)")
    for ly in layers(g):
        if ly.kind not in ("dense", "conv", "pool"):
            continue
        bits, vmax = ly.resources["in_bits"], ly.resources["in_max"]
        if ly.resources.get("in_graded_only"):
            lanes, msg_bits = 1, bits
            if enc == "binary":
                g.graph.setdefault("graded_sdnn_edges", []).append(ly.index)
        else:
            lanes = vmax if (enc == "binary" and vmax > 1) else 1
            msg_bits = 0 if (enc == "binary" or bits == 0) else bits
        w = ly.lava_weight
        groups = ly.groups
        if ly.kind == "dense":
            lw = np.repeat(w, lanes, axis=1)
        elif ly.kind == "conv":
            lw = lava_conv_weight(np.repeat(w, lanes, axis=1))
        else:  # pool: per-channel kernel as a depthwise conv
            c = ly.shape[0]
            lw = lava_conv_weight(np.broadcast_to(w, (c, lanes) + w.shape).copy())
            groups = c
        ly.syn = dict(weight=lw.astype(np.int32), message_bits=msg_bits, lanes=lanes,
                      groups=groups)
        for u in g.predecessors(ly.index):
            g.edges[u, ly.index].update(encoding=enc, lanes=lanes, message_bits=msg_bits)
    for u, v in g.edges:   # an edge into a flatten carries what its consumer receives
        if g.nodes[v]["layer"].kind == "flatten":
            for w in g.successors(v):
                g.edges[u, v].update({k: g.edges[v, w][k] for k in
                                      ("encoding", "lanes", "message_bits") if k in g.edges[v, w]})
    return g
