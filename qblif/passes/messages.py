"""Message assignment: the one :class:`qblif.ir.Message` of every edge.

QB-LIF: a count n in 0..K needs ``bit_length(K)`` payload bits (graded); CUBA: 0 (a 1-bit
binary spike); the input: ``input_bits`` (direct graded encoding, ``qblif.core.encoding``);
SDNN (and an SDNN input encoder): its ``messageBits`` (stock NetX's default 16), signed
graded values that stay graded in every burst encoding (``graded_only``). An edge into a
flatten carries its producer's events. The graph's ``encoding`` is part of the record.
"""
from __future__ import annotations

from qblif.core.errors import CompileError
from qblif.ir import ENCODINGS, Message, producer
from qblif.passes.declare import declare
from qblif.core.params import message_bits

GRADED_CUBA_BITS = 24   # a graded-spike CUBA sends v >> 6 (v: 24-bit state)


def out_message(g, ly, encoding: str = "graded") -> Message:
    """The :class:`Message` layer ``ly`` (or the input, None) emits."""
    if ly is not None and ly.neuron is not None and ly.neuron.kind == "SDNN":
        return Message(int(ly.neuron.message_bits), 0, signed=True, graded_only=True,
                       encoding=encoding)
    if ly is None or ly.kind == "input":
        bits = int(g.graph["input_bits"])
        return Message(bits, 2 ** bits - 1, encoding=encoding)
    if ly.neuron.graded_spike:
        return Message(GRADED_CUBA_BITS, 0, graded_only=True, encoding=encoding, scale_exp=6)
    if ly.neuron.kind in ("CUBA", "ALIF", "RF"):
        return Message(0, 1, encoding=encoding)
    k = int(ly.neuron.max_burst)
    return Message(message_bits(k), k, encoding=encoding)


@declare(reads=("graph.encoding", "graph.input_bits", "layer.kind", "layer.neuron"),
         writes=("edge.message", "graph.input_message"),
         requires=("graph.input_bits", "graph.encoding"),
         ensures=("edge.message", "graph.input_message"))
def assign_message_bits(g):
    """``message`` on every edge; ``g.graph["input_message"]``: what the frame source sends
    (the edge from outside into the first layer)."""
    enc = g.graph.get("encoding", "graded")
    if enc not in ENCODINGS:
        raise CompileError(f"unknown encoding {enc!r} (expected graded or binary)")
    g.graph["input_message"] = out_message(g, None, enc)
    for u, v, d in g.edges(data=True):
        src = g.nodes[u]["layer"]
        if src.kind == "flatten":
            src = producer(g, u)
        d["message"] = out_message(g, src, enc)
    return g
