"""A third-party NIR producer: networks built in snnTorch, written by snnTorch's own NIR
exporter, compiled by our front end and run in Lava; the spike agreement with snnTorch's own
float simulation is measured per layer (and must be high: only quantization differs)."""
from __future__ import annotations

import numpy as np
import pytest

nir = pytest.importorskip("nir")
pytest.importorskip("nirtorch")
torch = pytest.importorskip("torch")
snn = pytest.importorskip("snntorch")

import qblif  # noqa: E402
from qblif import CompileError  # noqa: E402
from qblif.exact.oracle import forward  # noqa: E402
from qblif.ir import layers  # noqa: E402
from qblif.nir.simulate import agreement, simulate  # noqa: E402
import snntorch_nets as sn  # noqa: E402

DT = 1e-4   # snnTorch's exporter: tau = dt / (1 - beta) with dt = 1e-4


def _mlp():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(16, 12), sn.leaky((12,), 0.8, 1.0),
                               torch.nn.Linear(12, 5), sn.leaky((5,), 0.9, 0.5, output=True)), (16,)


def _synaptic():
    torch.manual_seed(1)
    return torch.nn.Sequential(torch.nn.Linear(16, 12, bias=False), sn.synaptic((12,)),
                               torch.nn.Linear(12, 5, bias=False),
                               sn.leaky((5,), 0.9, 0.5, output=True)), (16,)


def _conv():
    torch.manual_seed(2)
    return torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, 3, padding=1), sn.leaky((4, 8, 8), 0.7, 0.45),
        torch.nn.AvgPool2d(2), sn.leaky((4, 4, 4), 0.5, 0.3),   # thresholds off the spike
        torch.nn.Flatten(), torch.nn.Linear(64, 6),             # grid: no float32 ties
        sn.leaky((6,), 0.8, 0.55, output=True)), \
        (1, 8, 8)


def _fused():
    """Conv2d -> AvgPool2d -> Leaky and Linear -> Linear -> Leaky: ops fused into one synapse."""
    torch.manual_seed(3)
    return torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.AvgPool2d(2), sn.leaky((4, 4, 4), 0.7, 0.3),
        torch.nn.Flatten(), torch.nn.Linear(64, 12), torch.nn.Linear(12, 6),
        sn.leaky((6,), 0.8, 0.35, output=True)), (1, 8, 8)


@pytest.mark.parametrize("make", [_mlp, _synaptic, _conv, _fused],
                         ids=["mlp", "synaptic", "conv", "fused"])
def test_snntorch_export_compiles_runs_in_lava_and_agrees(tmp_path, make):
    net, in_shape = make()
    path = tmp_path / "snn.nir"
    sn.export(net, in_shape, path)
    rng = np.random.default_rng(3)
    frames = rng.integers(0, 16, (4,) + in_shape)
    steps = 8
    ref = sn.simulate(net, frames, steps)                       # snnTorch's own float run
    with qblif.compile(path, input_bits=4, nir_options=dict(dt=DT)) as cnet:
        neuron_layers = [ly.index for ly in layers(cnet.ir) if ly.kind != "flatten"]
        assert len(neuron_layers) == len(ref)
        lava = cnet.run(frames, steps)
        oracle = forward(cnet.ir, frames, steps)
        ours = simulate(path, frames, steps)                    # our float NIR simulation
    for i in neuron_layers:
        assert np.array_equal(lava[i], oracle[i])
    snn_agree = agreement(lava, dict(zip(neuron_layers, ref)))
    float_agree = agreement(ours, dict(zip(neuron_layers, ref)))
    # our float simulation of the NIR file is snnTorch's semantics (float32 rounding aside)
    assert min(float_agree.values()) >= 0.99, float_agree
    # after quantization to 8-bit weights: measured, and high
    assert min(snn_agree.values()) >= 0.9, snn_agree
    assert sum(int(r.sum()) for r in ref) > 20, "a silent network tests nothing"


def test_snntorch_bias_into_synaptic_current_compiles_with_a_relay(tmp_path):
    """A biased Linear into Synaptic (once refused) compiles: the bias becomes one more weight
    column into the current, fed by an always-on relay neuron (docs/nir.md); the agreement is
    measured in tests/nir/test_nir_conventions_snntorch.py."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(8, 4), sn.synaptic((4,), output=True))
    path = tmp_path / "b.nir"
    sn.export(net, (8,), path)
    with qblif.compile(path) as cnet:
        assert cnet.ir.graph["nir_relays"], "no relay layer was inserted for the bias"


def _recurrent(kind):
    torch.manual_seed(4)
    neuron = sn.rleaky(6, 0.8, 1.0, output=True, rec_gain=3.0) if kind == "RLeaky" else \
        sn.rsynaptic(6, 0.5, 0.8, 0.6, output=True, rec_gain=3.0)
    return torch.nn.Sequential(torch.nn.Linear(8, 6, bias=kind == "RLeaky"), neuron)


@pytest.mark.parametrize("kind", ["RLeaky", "RSynaptic"])
def test_snntorch_recurrent_layer_runs_as_dense_rec(tmp_path, kind):
    """snnTorch's recurrent layers (a flat cycle lif -> w_rec -> lif in its export) become
    the IR's dense_rec layer: Lava = exact engine = oracle (also with sample lanes), and the
    float NIR simulation equals snnTorch's (RLeaky; RSynaptic's reset is one step late in
    snnTorch, which the NIR file does not say: measured only)."""
    net = _recurrent(kind)
    path = tmp_path / "rec.nir"
    sn.export(net, (8,), path)
    rng = np.random.default_rng(5)
    frames = rng.integers(0, 16, (4, 8))
    steps = 8
    ref = sn.simulate(net, frames, steps)[0]
    with qblif.compile(path, input_bits=4, nir_options=dict(dt=DT)) as cnet:
        ly = layers(cnet.ir)[0]
        assert ly.kind == "dense" and ly.weight_rec.shape == (6, 6) and np.any(ly.weight_rec)
        assert cnet.ir.has_edge(0, 0)
        lava = cnet.run(frames, steps)
        lanes = cnet.run(frames, steps, lanes=2)
        eng = cnet.run(frames, steps, engine="exact")
        oracle = forward(cnet.ir, frames, steps)
    ours = simulate(path, frames, steps)
    assert np.array_equal(lava[0], oracle[0]) and np.array_equal(eng[0], oracle[0])
    assert np.array_equal(lanes[0], oracle[0])
    assert ref.sum() > 10
    if kind == "RLeaky":
        assert agreement(ours, {0: ref})[0] == 1.0
        assert agreement(lava, {0: ref})[0] >= 0.9


def test_recurrent_through_a_conv_is_refused_naming_the_node(tmp_path):
    nodes = {"in": nir.Input(input_type={"input": np.array([1, 4, 4])}),
             "c": nir.Conv2d(input_shape=(4, 4), weight=np.ones((1, 1, 1, 1)), stride=1,
                             padding=0, dilation=1, groups=1, bias=np.zeros(1)),
             "lif": sn_lif((1, 4, 4)), "rec": nir.Linear(weight=np.eye(16)),
             "out": nir.Output(output_type={"output": np.array([1, 4, 4])})}
    g = nir.NIRGraph(nodes=nodes, edges=[("in", "c"), ("c", "lif"), ("lif", "rec"),
                                         ("rec", "lif"), ("lif", "out")], type_check=False)
    from qblif.ir.from_nir import graph_to_ir
    with pytest.raises(CompileError, match="NIR node 'rec' .*recurrent layer is dense"):
        graph_to_ir(g, dt=DT)


def sn_lif(shape):
    return nir.LIF(tau=np.full(shape, 2 * DT), r=np.full(shape, 2.0), v_leak=np.zeros(shape),
                   v_threshold=np.ones(shape))
