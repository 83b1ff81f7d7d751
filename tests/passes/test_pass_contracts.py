"""The pass manager checks each pass's contract after it runs (qblif.passes.run_pass):
undeclared layer-field and graph reads, in-place rewrites of undeclared fields, and what a
pass ensures. Every pass of PASSES runs checked on every compile, so the suite's compiles
check the declared contracts of the real passes too."""
import numpy as np
import pytest

import qblif.passes as P
from qblif.ir.from_netx import read
from test_compiler_writer import dense_net, write_net


@pytest.fixture
def graph(tmp_path):
    specs, shape = dense_net(np.random.default_rng(3))
    g = read(write_net(tmp_path / "n.net", specs, shape))
    g.graph["input_bits"], g.graph["encoding"] = 4, "graded"
    return P.run_passes(g, P.PASSES[:3])     # validated, normalized, shapes inferred


def test_an_undeclared_layer_read_is_refused(graph):
    @P.declare(reads=("layer.kind",), writes=())
    def peeks(g):
        [g.nodes[i]["layer"].bias for i in g.nodes]
        return g
    with pytest.raises(AssertionError, match=r"peeks read \['layer.bias'\]"):
        P.run_pass(peeks, graph)


def test_an_undeclared_graph_read_is_refused(graph):
    @P.declare(reads=(), writes=())
    def peeks(g):
        g.graph.get("timesteps")
        return g
    with pytest.raises(AssertionError, match=r"graph.timesteps"):
        P.run_pass(peeks, graph)


def test_an_in_place_rewrite_is_caught_and_validate_changes_nothing(graph):
    @P.declare(reads=("layer.kind", "layer.weight"), writes=())
    def pure_looking(g):
        ly = next(g.nodes[i]["layer"] for i in g.nodes if g.nodes[i]["layer"].weight is not None)
        ly.weight[0, 0] += 2        # in place: same object, other content
        return g
    with pytest.raises(AssertionError, match=r"changed \['layer.weight'\]"):
        P.run_pass(pure_looking, graph)
    assert P.validate.writes == ()
    before = P.snapshot(graph)
    P.run_pass(P.validate, graph)
    assert P.snapshot(graph) == before


def test_what_a_pass_ensures_must_be_there(graph):
    @P.declare(reads=(), writes=("graph.cores",), ensures=("graph.cores",))
    def forgets(g):
        return g
    with pytest.raises(AssertionError, match=r"ensures \['graph.cores'\]"):
        P.run_pass(forgets, graph)


def test_every_pass_declares_requires_reads_writes_ensures():
    P.check_order()
    for p in P.PASSES:
        assert set(p.requires) <= set(p.reads) and set(p.ensures) <= set(p.writes), p.__name__
