"""The typed IR: one Message per edge, Synapse records, a pure validate, declared passes."""
from __future__ import annotations

import pickle

import numpy as np
import pytest

import qblif
from qblif import passes as P
from qblif.core.errors import CompileError
from qblif.ir import Message, in_message, layers
from qblif.ir.from_netx import read
from test_compiler_writer import conv_net, dense_net, write_net


def _graph(tmp_path, specs, shape, **kw):
    g = read(write_net(tmp_path / "n.net", specs, input_shape=shape, **kw))
    g.graph.update(input_bits=4, encoding=kw.get("encoding", "graded"))
    return g


def _snapshot(g) -> bytes:
    """Everything the IR holds (networkx's cached views left out)."""
    return pickle.dumps((dict(g.graph), [(vars(ly), vars(ly.neuron) if ly.neuron else None)
                                         for ly in layers(g)], list(g.edges(data=True))))


def test_message_lanes_and_wire_bits():
    assert Message(3, 4, encoding="binary").lanes == 4
    assert Message(3, 4, encoding="binary").wire_bits == 0
    assert Message(3, 4).lanes == 1 and Message(3, 4).wire_bits == 3
    sd = Message(16, 0, signed=True, graded_only=True, encoding="binary")
    assert sd.lanes == 1 and sd.wire_bits == 16
    assert Message(0, 1, encoding="binary").lanes == 1   # a CUBA spike needs no lanes
    with pytest.raises(ValueError):
        Message(1, 1, encoding="unary")


@pytest.mark.parametrize("enc", ["graded", "binary"])
def test_every_edge_has_one_message_and_synapses_match_it(tmp_path, enc):
    rng = np.random.default_rng(0)
    specs, shape = conv_net(rng, k=3)
    with qblif.compile(write_net(tmp_path / "c.net", specs, input_shape=shape),
                          encoding=enc) as net:
        g = net.ir
        for u, v, d in g.edges(data=True):
            assert isinstance(d["message"], Message) and d["message"].encoding == enc
            assert set(d) <= {"message", "recurrent"}      # nothing else on an edge
        for ly in qblif.ir.synaptic_layers(g):
            msg = in_message(g, ly.index)
            assert "message_bits" not in ly.resources and "in_bits" not in ly.resources
            n_in = ly.synapse.weight.shape[1] if ly.kind == "dense" else ly.synapse.weight.shape[-1]
            c_in = ly.in_shape[0] if ly.kind != "pool" else 1
            assert n_in == (c_in // ly.synapse.groups if ly.kind == "conv" else
                            (int(np.prod(ly.in_shape)) if ly.kind == "dense" else 1)) * msg.lanes
        first = qblif.ir.synaptic_layers(g)[0]
        assert in_message(g, first.index).max == 2 ** 4 - 1


def test_validate_is_pure_and_normalize_fills_defaults(tmp_path):
    rng = np.random.default_rng(1)
    specs, shape = conv_net(rng, per_channel=True)
    specs[1]["bias"] = np.arange(3, dtype=np.float32)
    g = _graph(tmp_path, specs, shape)
    before = _snapshot(g)
    P.validate(g)
    assert _snapshot(g) == before
    P.normalize(g)
    conv = g.nodes[1]["layer"]
    assert conv.neuron.bias_exp == 6 and np.shape(conv.neuron.vth) == tuple(conv.shape)
    assert np.shape(conv.neuron.bias_mant) == tuple(conv.shape)


def test_pass_declarations_are_checked(tmp_path):
    P.check_order()
    for p in P.PASSES:
        assert isinstance(p.reads, tuple) and isinstance(p.writes, tuple)

    @P.declare(reads=("layer.neuron",), writes=())
    def sneaky(g):
        g.graph["secret"] = 1
        return g
    specs, shape = dense_net(np.random.default_rng(2))
    with pytest.raises(AssertionError, match="secret"):
        P.run_passes(_graph(tmp_path, specs, shape), [sneaky])

    @P.declare(reads=("layer.synapse",), writes=())
    def early(g):
        return g
    with pytest.raises(AssertionError, match="early"):
        P.check_order([early])


def test_recurrent_edges_must_be_marked_self_loops(tmp_path):
    specs, shape = dense_net(np.random.default_rng(3))
    g = _graph(tmp_path, specs, shape)
    g.add_edge(2, 1)
    with pytest.raises(CompileError, match="backwards"):
        P.validate(g)
    g.remove_edge(2, 1)
    g.add_edge(2, 2, recurrent=True)
    P.validate(g)
    assert qblif.ir.producer(g, 2).index == 1
