"""A third-party NIR producer: networks built in snnTorch, written by snnTorch's own NIR
exporter, compiled by our front end and run in Lava; the spike agreement with snnTorch's own
float simulation is measured per layer (and must be high: only quantization differs)."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("nir")
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


def test_snntorch_bias_into_synaptic_current_is_refused(tmp_path):
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(8, 4), sn.synaptic((4,), output=True))
    path = tmp_path / "b.nir"
    sn.export(net, (8,), path)
    with pytest.raises(CompileError, match=r"\(CubaLIF\): the bias of '0' feeds the synaptic"):
        qblif.compile(path)


def test_snntorch_recurrent_layer_is_refused_naming_the_node(tmp_path):
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Linear(8, 4),
        snn.RLeaky(beta=torch.full((4,), 0.8), linear_features=4, init_hidden=True,
                   output=True))
    path = tmp_path / "r.nir"
    sn.export(net, (8,), path)
    with pytest.raises(CompileError, match="NIR node '1': a recurrent subgraph"):
        qblif.compile(path)
