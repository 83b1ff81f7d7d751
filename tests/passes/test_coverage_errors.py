"""Every unsupported feature is one CompileError naming layer, key and the real reason;
the CLI exits 2 with one line."""
from __future__ import annotations

import numpy as np
import pytest

import qblif
from qblif.core.errors import CompileError
from test_compiler_writer import cuba_neuron, dense_net, write_net


def _net(tmp_path, mutate):
    specs, shape = dense_net(np.random.default_rng(0), sizes=(6, 5, 4))
    mutate(specs)
    return write_net(tmp_path / "x.net", specs, input_shape=shape)


def _neuron(kind):
    def f(specs):
        specs[2]["neuron"] = {"type": kind, "vThMant": 10, "iDecay": 10, "vDecay": 10}
    return f


def _rf_on_real_weights(specs):
    specs[2]["neuron"] = {"type": "RF_PHASE", "vThMant": 10, "sinDecay": 500, "cosDecay": 3500}


def _complex(specs):
    w = specs[1].pop("weight")
    specs[1]["weight/real"], specs[1]["weight/imag"] = w, w


def _kind(kind):
    def f(specs):
        specs[2]["type"] = kind
    return f


def _per_neuron_slow_lif(specs):
    specs[2]["neuron"] = dict(cuba_neuron(np.random.default_rng(1)), iDecay=0,
                              vThMant=np.arange(1, 5))


def _delay(value):
    def f(specs):
        specs[1]["delay"] = value
    return f


CASES = [
    (_neuron("ADRF_PHASE"), 2, "neuron/type", "adaptive resonate"),
    (_rf_on_real_weights, 2, "neuron/type", "needs complex dense weights"),
    (_complex, 1, "weight", "need a resonate-and-fire"),
    (_kind("convT"), 2, "type", "transposed"),
    (_kind("concat"), 2, "type", "concat"),
    (_per_neuron_slow_lif, 2, "neuron/iDecay", "scalar vThMant"),
    (_delay(np.full(5, 63.0)), 1, "delay", "clamps"),
    (_delay(np.ones(7)), 1, "delay", "fits neither"),
]


@pytest.mark.parametrize("mutate,layer,key,words", CASES)
def test_unsupported_features_name_layer_key_and_reason(tmp_path, mutate, layer, key, words):
    path = _net(tmp_path, mutate)
    with pytest.raises(CompileError) as err:
        qblif.compile(path)
    assert (err.value.layer, err.value.key) == (layer, key), str(err.value)
    assert words in str(err.value) and "\n" not in str(err.value)


def test_cli_exit_2_on_refusal(tmp_path, capsys):
    from qblif.cli.main import main
    path = _net(tmp_path, _complex)
    assert main(["compile", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "layer 1 key 'weight'" in err[0]


def test_thresholds_above_17_bits_and_lif_ranges_compile(tmp_path):
    def wide(specs):
        specs[2]["neuron"] = dict(cuba_neuron(np.random.default_rng(1)), vThMant=(1 << 18) - 1,
                                  iDecay=0, vDecay=4096)
    with qblif.compile(_net(tmp_path, wide)) as net:
        ly = net.ir.nodes[2]["layer"]
        assert ly.proc == "LIF" and ly.neuron.vth == (1 << 18) - 1 and ly.neuron.du == -1
