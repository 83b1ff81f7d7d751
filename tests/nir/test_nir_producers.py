"""NIR producers other than snnTorch (tests/nir/test_nir_snntorch.py): networks built in
Norse 1.1.0 and Sinabs 3.1.3, written by the producer's own exporter, compiled and run in
Lava; Lava = the exact engine = our oracle, and the agreement with the producer's own float
simulation is measured per layer; and our K = 1 export run by Norse's NIR importer. Each
test skips with the reason when its producer is not installed (test extras).
Rockpool 3.1.0's ``to_nir`` fails under nir 1.0.8 (no ``ignore_dims``: its batch and time
dims reach the Input type); tests/rockpool_nets.py calls its node mapping with them."""
from __future__ import annotations

import numpy as np
import pytest

nir = pytest.importorskip("nir")
torch = pytest.importorskip("torch")

import qblif  # noqa: E402
from qblif.exact.oracle import forward  # noqa: E402
from qblif.ir import layers  # noqa: E402
from qblif.nir.simulate import agreement, simulate  # noqa: E402


def _norse():
    pytest.importorskip("norse.torch", reason="norse==1.1.0 is not installed (test extra)")
    import norse_nets
    return norse_nets


def _two_dense_layers_run_exactly(path, frames, steps, dt):
    """Compile a producer's 2-layer file (4-bit input, ``dt``): two dense layers, and Lava =
    exact engine = numpy oracle on every layer and step. Returns Lava's counts."""
    with qblif.compile(path, input_bits=4, nir_options=dict(dt=dt)) as net:
        assert [ly.kind for ly in layers(net.ir)] == ["dense", "dense"]
        lava = net.run(frames, steps)
        eng = net.run(frames, steps, engine="exact")
        oracle = forward(net.ir, frames, steps)
    for i in oracle:
        assert np.array_equal(lava[i], oracle[i]) and np.array_equal(eng[i], oracle[i])
    return lava


def test_norse_lifbox_mlp_exports_compiles_and_agrees(tmp_path):
    nn_ = _norse()
    torch.manual_seed(0)
    model = nn_.mlp((16, 12, 5))
    with torch.no_grad():
        model[0].weight.mul_(2)                 # both layers spike
        model[2].weight.mul_(8)
        model[2].bias.fill_(0.5)
    path = tmp_path / "norse.nir"
    nn_.export(model, 16, path)
    rng = np.random.default_rng(6)
    frames = rng.integers(0, 16, (4, 16))
    steps = 10
    ref = dict(zip((0, 1), nn_.simulate(model, frames, steps)))
    ours = simulate(path, frames, steps, dt=nn_.NIR_DT)
    assert agreement(ours, ref) == {0: 1.0, 1: 1.0}          # Norse's semantics, exactly
    lava = _two_dense_layers_run_exactly(path, frames, steps, nn_.NIR_DT)
    agree = agreement(lava, ref)
    assert min(agree.values()) >= 0.9, agree
    assert all(r.sum() > 5 for r in ref.values()), "a silent layer tests nothing"


def norse_modules(path, dt):
    """Norse's own modules for each node of a NIR chain, from Norse's node importer.
    ``norse.torch.from_nir`` itself fails on the pinned stack (nirtorch 1.0 rebuilds a
    NIRGraph of torch modules, which nir 1.0.8's type inference rejects: "'Identity' object
    has no attribute 'input_type'"), so the chain is wired here in its order."""
    from norse.torch.utils.import_nir import _import_norse_module
    from qblif.nir.graph import chain
    return [(name, _import_norse_module(node, dt=dt))
            for name, node in chain(nir.read(str(path)))[1:-1]]


@torch.no_grad()
def norse_chain_run(mods, frames, steps):
    """Per neuron module (Norse's CubaLIF / LIFBoxCell import) spikes ``(S, T, n)``."""
    cells = [n for n, m in mods if not isinstance(m, torch.nn.Linear)]
    states, rec = {n: None for n in cells}, {n: [] for n in cells}
    x = torch.as_tensor(np.asarray(frames, np.float32))
    for _ in range(steps):
        h = x
        for name, m in mods:
            if name in states:
                h, states[name] = m(h, states[name])
                rec[name].append(h.numpy().copy())
            else:
                h = m(h)
    return [np.stack(rec[n], axis=1) for n in cells]


def test_our_k1_export_runs_in_norse_and_agrees(tmp_path):
    """``qblif export-nir`` of a K = 1 CUBA model, read by Norse's NIR node importer: Norse's
    float run agrees with our float NIR simulation (>= 99%) and with our Lava run of the
    NetX model (measured, >= 95%; docs/nir.md has the figures)."""
    _norse()
    src, out = _k1_export(tmp_path)
    frames = np.random.default_rng(1).integers(0, 16, (20, 12))
    steps = 8
    theirs = dict(zip((1, 2), norse_chain_run(norse_modules(out, 1e-4), frames, steps)))
    ours = simulate(out, frames, steps)
    assert min(agreement({1: ours[0], 2: ours[1]}, theirs).values()) >= 0.99
    with qblif.compile(src) as net:
        lava = net.run(frames, steps)
    assert min(agreement(lava, theirs).values()) >= 0.95
    assert all(t.sum() > 20 for t in theirs.values())


def _k1_export(tmp_path):
    """A K = 1 CUBA NetX model 12-8-6 and its ``qblif export-nir`` at dt = 1e-4."""
    import sys
    sys.path.insert(0, str(__import__("pathlib").Path(__file__).parents[1] / "passes"))
    from test_compiler_writer import dense_net, write_net
    from qblif.cli import main as cli
    specs, shape = dense_net(np.random.default_rng(0), sizes=(12, 8, 6), cuba=(0, 1))
    src = write_net(tmp_path / "k1.net", specs, shape)
    out = tmp_path / "k1.nir"
    assert cli.main(["export-nir", str(src), str(out), "--dt", "1e-4"]) == 0
    return src, out


@torch.no_grad()
def _norse_graph_run(model, frames, steps):
    """Norse's ``from_nir`` executor run step by step: per neuron module spikes (S, T, n)."""
    cells = [m for m in model.modules() if type(m).__name__ == "CubaLIF"]
    rec = {id(m): [] for m in cells}
    hooks = [m.register_forward_hook(lambda mod, _i, o: rec[id(mod)].append(o[0].numpy().copy()))
             for m in cells]
    x, state = torch.as_tensor(np.asarray(frames, np.float32)), None
    try:
        for _ in range(steps):
            _, state = model(x, state)
    finally:
        for h in hooks:
            h.remove()
    return [np.stack(rec[id(m)], axis=1) for m in cells]


def test_our_k1_export_round_trip_into_snntorch_and_norse(tmp_path):
    """``qblif export-nir`` of a K = 1 model read by snnTorch's ``import_from_nir`` and
    Norse's ``from_nir`` (both need nirtorch >= 2, ``nirtorch.nir_to_torch``): their float
    runs agree with our float NIR simulation of the file (snnTorch exactly: its Synaptic
    at dt = 1e-4 is the file's Euler step) and with our Lava run of the NetX model."""
    nirtorch = pytest.importorskip("nirtorch")
    if not hasattr(nirtorch, "nir_to_torch"):
        pytest.skip("snnTorch 1.0.0's import_from_nir and Norse 1.1.0's from_nir need nirtorch "
                    f">= 2 (nirtorch.nir_to_torch; the test extra pins 2.6); {nirtorch.__version__}"
                    " is installed")
    snn_import = pytest.importorskip("snntorch.import_nir", reason="snntorch is not installed")
    nt = pytest.importorskip("norse.torch", reason="norse is not installed")
    import snntorch_nets as sn
    src, out = _k1_export(tmp_path)
    frames = np.random.default_rng(1).integers(0, 16, (20, 12))
    steps = 8
    ours = dict(zip((1, 2), simulate(out, frames, steps).values()))
    with qblif.compile(src) as net:
        lava = net.run(frames, steps)
    snn_model = snn_import.import_from_nir(nir.read(str(out)))
    snn_run = dict(zip((1, 2), sn.simulate(snn_model, frames, steps)))
    norse_run = dict(zip((1, 2), _norse_graph_run(nt.from_nir(nir.read(str(out)), dt=1e-4),
                                                  frames, steps)))
    for theirs in (snn_run, norse_run):
        assert all(t.sum() > 20 for t in theirs.values())
        assert min(agreement(ours, theirs).values()) >= 0.99
        assert min(agreement(lava, theirs).values()) >= 0.95
    assert agreement(ours, snn_run) == {1: 1.0, 2: 1.0}


def test_sinabs_cnn_pooling_into_conv_exports_compiles_and_agrees(tmp_path):
    """Sinabs 3.1.3 (``pip install --no-deps sinabs==3.1.3 pbr``: its samna dependency is
    not needed for NIR) writes Conv2d-IAF-SumPool2d-Conv2d-IAF-Flatten-Linear-IAF with
    ``sinabs.to_nir``; the pooling fuses into the next conv. Sinabs' IF has ``r = 1`` and
    no dt: its files mean ``dt = 1``. With ``SingleSpike`` and ``MembraneReset`` (what the
    NIR file states) our float simulation equals Sinabs' run; Lava = engine = oracle."""
    sinabs = pytest.importorskip("sinabs", reason="sinabs==3.1.3 is not installed (test "
                                 "extra, --no-deps, with pbr)")
    import sinabs.layers as sl
    from sinabs.activation import MembraneReset, SingleSpike

    def iaf():
        return sl.IAFSqueeze(batch_size=1, spike_fn=SingleSpike, reset_fn=MembraneReset(),
                             min_v_mem=None)

    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, 3, padding=1, bias=False), iaf(), sl.SumPool2d(2),
        torch.nn.Conv2d(4, 4, 3, padding=1, bias=False), iaf(), torch.nn.Flatten(),
        torch.nn.Linear(64, 5, bias=False), iaf())
    with torch.no_grad():
        for j, gain in ((0, 2), (3, 2), (6, 4)):
            model[j].weight.mul_(gain)
    path = tmp_path / "sinabs.nir"
    graph = sinabs.to_nir(model, torch.zeros(1, 1, 8, 8))
    graph.infer_types()     # nirtorch 2.x builds it unchecked: the conv input shapes
    nir.write(str(path), graph)
    frames = np.random.default_rng(0).integers(0, 4, (3, 1, 8, 8))
    steps = 6
    cells = [m for m in model if isinstance(m, sl.IAFSqueeze)]
    rec = {id(m): [] for m in cells}
    hooks = [m.register_forward_hook(lambda mod, _i, o: rec[id(mod)].append(o.numpy().copy()))
             for m in cells]
    with torch.no_grad():
        for s in range(len(frames)):
            sinabs.reset_states(model)
            model(torch.tensor(frames[s:s + 1], dtype=torch.float32).repeat(steps, 1, 1, 1))
    for h in hooks:
        h.remove()
    theirs = [np.stack(rec[id(m)]).reshape((len(frames), steps, -1)) for m in cells]
    ours = simulate(path, frames, steps, dt=1.0)
    with qblif.compile(path, input_bits=2, nir_options=dict(dt=1.0)) as net:
        assert [ly.kind for ly in layers(net.ir)] == ["conv", "conv", "flatten", "dense"]
        assert "fused into one conv" in net.ir.graph["nir_quant"][1]["fused"][0]
        lava = net.run(frames, steps)
        eng = net.run(frames, steps, engine="exact")
        oracle = forward(net.ir, frames, steps)
    keys = sorted(ours)
    for i in oracle:
        assert np.array_equal(lava[i], oracle[i]) and np.array_equal(eng[i], oracle[i])
    ref = {k: t.reshape(ours[k].shape) for k, t in zip(keys, theirs)}
    assert agreement(ours, ref) == {k: 1.0 for k in keys}
    assert min(agreement(lava, ref).values()) >= 0.9
    assert all(t.sum() > 10 for t in theirs)


def test_rockpool_liftorch_exports_compiles_and_agrees(tmp_path):
    """Rockpool 3.1.0 LinearTorch-LIFTorch x 2, written by Rockpool's node mapping
    (tests/rockpool_nets.py: its ``to_nir`` with the batch and time dims ignored), compiled
    at Rockpool's dt; Lava = engine = oracle. The file as written is not Rockpool's model
    (input gain ``tau_syn/dt`` times too small, Euler decays): the second layer agrees less;
    restated as Rockpool's own importer reads it (exponential decays at its dt), our float
    simulation is Rockpool's run up to its reset by subtraction, which NIR cannot state."""
    pytest.importorskip("rockpool", reason="rockpool==3.1.0 is not installed (test extra)")
    import rockpool_nets as rn
    torch.manual_seed(0)
    model = rn.mlp((16, 12, 5), tau_mem=4e-3, tau_syn=2e-3)
    frames = np.random.default_rng(6).integers(0, 16, (8, 16))
    steps = 12
    ref = dict(zip((0, 1), rn.simulate(model, frames, steps)))
    assert all(r.sum() > 50 for r in ref.values()), "a silent layer tests nothing"
    agree = {}
    for restated in (False, True):
        path = tmp_path / f"rockpool{int(restated)}.nir"
        rn.export(model, 16, path, rockpool_semantics=restated)
        ours = simulate(path, frames, steps, dt=rn.DT)
        lava = _two_dense_layers_run_exactly(path, frames, steps, rn.DT)
        assert min(agreement(lava, ours).values()) >= 0.95         # quantization only
        agree[restated] = (agreement(ours, ref), agreement(lava, ref))
    assert min(agree[True][0].values()) >= 0.9 and min(agree[True][1].values()) >= 0.9, agree
    assert agree[False][0][1] < agree[True][0][1] - 0.1, agree      # the file's own meaning
