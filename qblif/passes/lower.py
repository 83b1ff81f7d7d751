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

Rewrites ``layer.synapse.weight`` into Lava's layout with the input's lanes tiled in
(and ``groups`` of a pool: one per channel); the lanes and message bits are the input
edge's :class:`qblif.ir.Message` (``lanes``, ``wire_bits``).
"""
from __future__ import annotations

import numpy as np

from qblif.ir import in_message, synaptic_layers
from qblif.passes.declare import declare


def lava_conv_weight(w_file: np.ndarray) -> np.ndarray:
    """File order ``(C_out, C_in, kH, kW)`` -> Lava ``Conv`` order ``(C_out, kW, kH, C_in)``,
    spatially flipped (Lava convolves, torch correlates), exactly as NetX does."""
    return np.ascontiguousarray(w_file[:, :, ::-1, ::-1].transpose(0, 3, 2, 1))


@declare(reads=("edge.message", "graph.input_message", "layer.kind", "layer.shape",
               "layer.synapse"),
         writes=("layer.synapse", "graph.graded_sdnn_edges"),
         requires=("edge.message", "graph.input_message"),
         ensures=())    # graded_sdnn_edges only where SDNN edges stay graded
def lower_bursts(g):
    for ly in synaptic_layers(g):
        msg = in_message(g, ly.index)
        if msg.graded_only and msg.encoding == "binary":
            g.graph.setdefault("graded_sdnn_edges", []).append(ly.index)
        lanes, syn = msg.lanes, ly.synapse
        w = syn.weight
        if ly.kind == "dense":
            syn.exp -= msg.scale_exp        # a graded CUBA's voltage payload: / 2^6
            lw = np.repeat(w, lanes, axis=1)
            if syn.delay is not None:   # (out, in) -> one delay per lane
                syn.delay = np.repeat(syn.delay, lanes, axis=1)
            if syn.imag is not None:
                syn.imag.weight = np.repeat(syn.imag.weight, lanes, axis=1).astype(np.int32)
            if syn.weight_rec is not None:   # the layer's own events, on their own lanes
                own = g.edges[ly.index, ly.index]["message"].lanes
                syn.weight_rec = np.repeat(syn.weight_rec, own, axis=1).astype(np.int32)
        elif ly.kind == "conv":
            lw = lava_conv_weight(np.repeat(w, lanes, axis=1))
        else:  # pool: per-channel kernel as a depthwise conv
            c = ly.shape[0]
            lw = lava_conv_weight(np.broadcast_to(w, (c, lanes) + w.shape).copy())
            syn.groups = c
        syn.weight = lw.astype(np.int32)
    return g
