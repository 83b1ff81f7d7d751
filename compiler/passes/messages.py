"""Message-bit assignment: what one event on each edge carries.

QB-LIF: a count n in 0..K needs ``bit_length(K)`` payload bits (graded);
CUBA: 0 (a 1-bit binary spike); the input: ``input_bits`` (direct graded
encoding, ``qblif_lava.encoding``). SDNN would be graded 16-bit, but is rejected
by validation. Sets ``layer.out_bits``/``out_max`` and edge ``bits``/``max``.
"""
from __future__ import annotations

from compiler.ir import layers, producer


def out_message(g, ly):
    """(payload bits, largest value) of the events layer ``ly`` (or the input, None) emits."""
    if ly is None or ly.kind == "input":
        bits = int(g.graph["input_bits"])
        return bits, 2 ** bits - 1
    if ly.neuron.kind == "CUBA":
        return 0, 1
    k = int(ly.neuron.max_burst)
    return k.bit_length(), k


def assign_message_bits(g):
    for ly in layers(g):
        if ly.kind in ("input", "flatten"):
            continue
        src = producer(g, ly.index)
        bits, vmax = out_message(g, src)
        ly.resources["in_bits"], ly.resources["in_max"] = bits, vmax
        for u in g.predecessors(ly.index):
            g.edges[u, ly.index].update(bits=bits, max=vmax)
    for u, v in g.edges:
        if "bits" not in g.edges[u, v]:   # edges into flatten carry the producer's events
            bits, vmax = out_message(g, producer(g, v) if g.nodes[v]["layer"].kind == "flatten"
                                     else g.nodes[u]["layer"])
            g.edges[u, v].update(bits=bits, max=vmax)
    return g
