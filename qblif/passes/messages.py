"""Message assignment: the one :class:`qblif.ir.Message` of every edge.

QB-LIF: a count n in 0..K needs ``bit_length(K)`` payload bits (graded); CUBA: 0 (a 1-bit
binary spike); the input: ``input_bits`` (direct graded encoding, ``qblif.core.encoding``);
SDNN (and an SDNN input encoder): its ``messageBits`` (stock NetX's default 16), signed
graded values that stay graded in every burst encoding (``graded_only``). An edge into a
flatten carries its producer's events. The graph's ``encoding`` is part of the record.
"""
from __future__ import annotations

from qblif.core.errors import CompileError
from qblif.ir import ENCODINGS, Message, frame_consumer, producer
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


def input_message(g, encoding: str = "graded") -> Message:
    """What the frame source sends: ``input_bits`` unsigned values, or, where the layer that
    takes the frames is sigma-delta (a ``Delta`` encoder, or an SDNN first synaptic layer
    after a neuron-less input, lava-dl's usual SDNN layout), signed graded values (no
    thermometer lanes in either encoding), as stock NetX feeds them."""
    msg = out_message(g, None, encoding)
    head = frame_consumer(g)
    if head is not None and head.neuron is not None and head.neuron.kind == "SDNN":
        return Message(msg.bits, msg.max, signed=True, graded_only=True, encoding=encoding)
    return msg


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
    g.graph["input_message"] = input_message(g, enc)
    for u, v, d in g.edges(data=True):
        src = g.nodes[u]["layer"]
        if src.kind == "flatten":
            src = producer(g, u)
        plain_input = src is not None and src.kind == "input" and src.neuron is None
        d["message"] = g.graph["input_message"] if plain_input else out_message(g, src, enc)
    return g
