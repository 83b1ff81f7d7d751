"""The mapping pass, the cost model and NeuroBench's metrics (docs/mapping.md)."""
from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import networkx as nx
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import qblif
from qblif.core import numeric
from qblif.core.chip import LOIHI2
from qblif.core.errors import ResourceLimitError
from qblif.ir import Layer, Message, Neuron, Synapse, in_message
from qblif.passes import neurobench as nb
from qblif.passes.cost import estimate_cost
from qblif.passes.mapping import map_network
from test_compiler_writer import write_net

ROOT = Path(__file__).resolve().parents[2]
DIGITS = ROOT / "netx_models/digits_qblif_mlp.net"


def _graph(ly, in_shape, k, encoding, rng):
    """input -> ly -> a small dense consumer (its routing entries count against ly's cores)."""
    g = nx.DiGraph()
    g.add_node(0, layer=Layer(0, "input", tuple(in_shape)))
    g.add_node(1, layer=ly)
    w2 = rng.integers(-3, 4, (3, ly.size))
    out = Layer(2, "dense", (3,), weight=w2, in_shape=(ly.size,), neuron=ly.neuron,
                synapse=Synapse(weight=w2, bits=4))
    g.add_node(2, layer=out)
    msg = Message(bits=int(k).bit_length(), max=k, encoding=encoding)
    g.add_edge(0, 1, message=msg)
    g.add_edge(1, 2, message=msg)
    return g


@st.composite
def layers_and_chips(draw):
    """A random dense or conv QB-LIF layer (sparse random weights) and a small chip whose
    limits bind."""
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 16)))
    k = draw(st.integers(1, 4))
    neuron = Neuron("QBLIF", du=0, dv=0, vth=1, max_burst=k)
    bits = draw(st.integers(2, 8))
    if draw(st.booleans()):
        n_in, n_out = draw(st.integers(1, 60)), draw(st.integers(1, 60))
        w = rng.integers(-3, 4, (n_out, n_in)) * (rng.random((n_out, n_in)) < 0.6)
        ly = Layer(1, "dense", (n_out,), weight=w, in_shape=(n_in,), neuron=neuron)
    else:
        ci, co = draw(st.integers(1, 4)), draw(st.integers(1, 5))
        h, wd, kk = draw(st.integers(3, 9)), draw(st.integers(3, 17)), draw(st.integers(1, 3))
        s, p = draw(st.integers(1, 2)), draw(st.integers(0, 1))
        ho, wo = (h + 2 * p - kk) // s + 1, (wd + 2 * p - kk) // s + 1
        w = rng.integers(-3, 4, (co, ci, kk, kk)) * (rng.random((co, ci, kk, kk)) < 0.7)
        ly = Layer(1, "conv", (co, ho, wo), weight=w, in_shape=(ci, h, wd), neuron=neuron,
                   kernel=(kk, kk), stride=(s, s), padding=(p, p))
    ly.synapse = Synapse(weight=w, bits=bits)
    chip = dataclasses.replace(
        LOIHI2, state_slots_per_core=2 * draw(st.integers(1, 64)),
        syn_mem_bits=draw(st.integers(10, 20000)), axons_in=draw(st.integers(1, 1000)),
        axons_out=draw(st.integers(1, 80)))
    enc = draw(st.sampled_from(("graded", "binary")))
    return _graph(ly, ly.in_shape, k, enc, rng), ly, chip


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(layers_and_chips())
def test_partitions_respect_every_limit_and_conserve(case):
    """Every piece is within every per-core limit (its output routing entries included), or
    the network is refused with the reason; the pieces cover each neuron once and hold all
    its synapses."""
    g, ly, chip = case
    m = map_network(g, chip)
    if not m.fits:      # the figure named is over the limit
        figure = re.search(r"needs (\d+)% of the core's", m.reason)
        assert m.reason.startswith("layer ") and (figure is None or int(figure[1]) > 100)
        return
    for p in m.all_pieces():
        assert all(v <= 1 for v in p.use(chip, "QBLIF").values()), p
    pieces = m.pieces[1]
    cover = np.zeros(ly.shape, int)
    for p in pieces:
        if ly.kind == "dense":
            cover[p.region[0]:p.region[1]] += 1
        else:
            c0, c1, w0, w1 = p.region
            cover[c0:c1, :, w0:w1] += 1
    assert (cover == 1).all()
    assert sum(p.neurons for p in pieces) == ly.size
    assert sum(p.synapses for p in pieces) == int(numeric.fan_out(ly).sum())


def test_network_that_cannot_fit_is_refused(tmp_path, monkeypatch, capsys):
    """One neuron with 120,000 inputs needs more input axons than a core has: compile
    --chip and map refuse it with the reason and the figure on one line, exit 2; compile
    without --chip reports it."""
    rng = np.random.default_rng(0)
    n = 120_000
    w = (2 * rng.integers(1, 60, (1, n))).astype(np.float32)
    neuron = {"type": "CUBA", "vThMant": 100, "iDecay": 1, "vDecay": 1, "refDelay": 1,
              "gradedSpike": False}
    path = write_net(tmp_path / "big.net", [
        {"type": "input", "shape": np.array([n])},
        {"type": "dense", "shape": np.array([1]), "inFeatures": n, "outFeatures": 1,
         "weight": w, "neuron": neuron}], input_shape=(n,), timesteps=2)
    import qblif.cli.main as cli
    for cmd in (["compile", str(path), "--chip", "loihi2"], ["map", str(path)]):
        assert cli.main(cmd) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "does not fit loihi2" in err and "layer 1" in err
        assert "2930% of the core's axons in" in err
    assert cli.main(["compile", str(path)]) == 0
    assert "does not fit loihi2" in capsys.readouterr().out
    small = dataclasses.replace(LOIHI2, cores_per_chip=1, chip_mesh=(1, 1))
    m = map_network(qblif.compile_ir(DIGITS), small)
    assert not m.fits and "chips" in m.reason


def test_placement_keeps_each_layer_on_one_chip():
    """On 8-core chips, fmnist_qblif_conv's layers (7, 2, 4, 1, 4, 1 pieces) each start on a
    fresh chip when they would straddle two: no layer spans chips, 3 chips, and only the
    outputs of the layers before a chip boundary cross chips."""
    g = qblif.compile_ir(ROOT / "netx_models/fmnist_qblif_conv.net")
    m = map_network(g, dataclasses.replace(LOIHI2, cores_per_chip=8, core_mesh=(2, 4)))
    assert m.fits and m.cores == 19 and m.chips == 3
    for ps in m.pieces.values():
        assert len({p.chip for p in ps}) == 1
    assert len({(p.chip, p.core) for p in m.all_pieces()}) == m.cores
    assert [m.pieces[i][0].chip for i in sorted(m.pieces)] == [0, 1, 1, 1, 2, 2]
    assert m.inter_chip == sum(p.neurons for i in (0, 3) for p in m.pieces[i])  # 0->1, 3->5


@pytest.fixture(scope="module")
def digits_run():
    with qblif.compile(DIGITS) as net:
        from qblif.core.frames import dataset_frames
        frames, _ = dataset_frames(net, "digits", 6)
        out = net.run(frames, 8, engine="exact")
        yield net.ir, net.last_run, out


def test_cost_synops_equal_the_runs_measured_counts(digits_run):
    g, run, _ = digits_run
    m = map_network(g)
    binary = estimate_cost(m, g, run["events"], 8, "binary")
    graded = estimate_cost(m, g, run["events"], 8, "graded")
    assert binary.synops_per_step.keys() == {i for i, s in run["layers"].items()
                                             if "synops_per_step" in s}
    for i, ops in binary.synops_per_step.items():
        assert ops == pytest.approx(run["layers"][i]["synops_per_step"], rel=1e-12)
        assert graded.synops_per_step[i] <= ops
    assert sum(graded.synops_per_step.values()) < sum(binary.synops_per_step.values())
    assert graded.energy_j["synops"] < binary.energy_j["synops"]
    e = binary.energy_j
    assert e["total"] == pytest.approx(e["synops"] + e["updates"] + e["static"])


def test_neurobench_metrics_follow_its_formulas(digits_run):
    g, run, out = digits_run
    dense = [g.nodes[i]["layer"] for i in sorted(g.nodes) if g.nodes[i]["layer"].synaptic]
    ws = [np.asarray(ly.weight) for ly in dense]
    assert nb.connection_sparsity(g) == sum((w == 0).sum() for w in ws) / sum(w.size for w in ws)
    assert nb.footprint(g) == -(-sum(w.size * ly.weight_bits for w, ly in zip(ws, dense)) // 8)
    acts = [out[ly.index] for ly in dense]
    assert nb.activation_sparsity(g, out) == sum((a == 0).sum() for a in acts) / sum(
        a.size for a in acts)
    ev = run["events"]
    n_s, steps = 6, 8
    for enc in ("binary", "graded"):
        ops = nb.synaptic_operations(g, ev, enc)
        unit = {i: (e if enc == "binary" else (e != 0)) for i, e in ev.items()}
        want = sum(unit[ly.index].sum() * ly.shape[0] for ly in dense) / n_s   # x out features
        got = ops["Effective_ACs"] + ops["Effective_MACs"]
        assert got == pytest.approx(want)
        lanes = {ly.index: 1 if enc == "graded" else in_message(g, ly.index).max
                 for ly in dense}          # binary: every thermometer lane of every input
        assert ops["Dense"] == pytest.approx(sum(np.prod(ly.in_shape) * ly.shape[0] * steps
                                                 * lanes[ly.index] for ly in dense))
        assert got <= ops["Dense"]
    assert nb.synaptic_operations(g, ev, "graded")["Effective_MACs"] > 0   # bursts > 1


def test_cli_map_table_json_plot(tmp_path, capsys):
    import qblif.cli.main as cli
    js, png = tmp_path / "m.json", tmp_path / "m.png"
    assert cli.main(["map", str(DIGITS), "--dataset", "digits", "--samples", "3",
                     "--json", str(js), "--plot", str(png)]) == 0
    out = capsys.readouterr().out
    assert "binding limit" in out and "graded encoding:" in out and "NeuroBench:" in out
    d = json.loads(js.read_text())
    assert d["cores"] == len(d["pieces"]) == sum(r["pieces"] for r in d["layers"])
    assert set(d["cost"]["encodings"]) == {"binary", "graded"}
    assert png.stat().st_size > 5000
