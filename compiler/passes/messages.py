"""Message-bit assignment: what one event on each edge carries.

QB-LIF: a count n in 0..K needs ``bit_length(K)`` payload bits (graded);
CUBA: 0 (a 1-bit binary spike); the input: ``input_bits`` (direct graded
encoding, ``qblif_lava.encoding``); SDNN (and an SDNN input encoder): its
``messageBits`` (stock NetX's default 16), signed graded values that stay graded in
every burst encoding (``graded_only``). Sets ``layer.resources`` ``in_bits``/``in_max``/
``in_graded_only`` and edge ``bits``/``max``/``graded_only``.
"""
from __future__ import annotations

from compiler.ir import layers, producer
from qblif_lava.params import message_bits


def out_message(g, ly):
    """(payload bits, largest value, graded only) of the events layer ``ly`` (or the
    input, None) emits; graded only: SDNN's signed values (no thermometer lanes)."""
    if ly is not None and ly.neuron is not None and ly.neuron.kind == "SDNN":
        return int(ly.neuron.message_bits), 0, True
    if ly is None or ly.kind == "input":
        bits = int(g.graph["input_bits"])
        return bits, 2 ** bits - 1, False
    if ly.neuron.kind == "CUBA":
        return 0, 1, False
    k = int(ly.neuron.max_burst)
    return message_bits(k), k, False


def assign_message_bits(g):
    for ly in layers(g):
        if ly.kind in ("input", "flatten"):
            continue
        src = producer(g, ly.index)
        bits, vmax, graded = out_message(g, src)
        ly.resources.update(in_bits=bits, in_max=vmax, in_graded_only=graded)
        for u in g.predecessors(ly.index):
            g.edges[u, ly.index].update(bits=bits, max=vmax, graded_only=graded)
    for u, v in g.edges:
        if "bits" not in g.edges[u, v]:   # edges into flatten carry the producer's events
            bits, vmax, graded = out_message(g, producer(g, v) if g.nodes[v]["layer"].kind
                                             == "flatten" else g.nodes[u]["layer"])
            g.edges[u, v].update(bits=bits, max=vmax, graded_only=graded)
    return g
