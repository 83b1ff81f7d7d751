"""The batched exact engine's coverage kinds (qblif/exact/kinds.py): axonal delays (per
output, per input, per synapse; dense and conv; QB-LIF, CUBA and SDNN layers), recurrent
``dense_rec`` layers (with lava-dl's output delay), graded-spike CUBA, neuron-less integrator
layers, ``average`` readouts and bias-driven CUBA input neurons. In the per-sample mode the
engine equals the numpy oracle (qblif.exact.oracle) on every layer and step (counts, u, v), for
chunks of 1 and more samples and both neuron implementations, and the compiled Lava run on
one network per feature."""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import qblif  # noqa: E402
from qblif.exact import ExactEngine, native  # noqa: E402
from qblif.exact.oracle import forward  # noqa: E402
from qblif.ir import layers  # noqa: E402

import lavadl_nets as nets  # noqa: E402
from test_compiler_writer import (cuba_neuron, even_weights, qblif_neuron,  # noqa: E402
                                  write_net)

PATHS = [False, True] if native.library() is not None else [False]
T = 7
SAMPLES = 5

#: lava-dl block networks (tests/lavadl_nets.py) with a coverage kind
FEATURES = ("input_neuron", "input_neuron_conv", "recurrent", "recurrent_delay", "dense_delay",
            "conv_delay", "graded", "affine", "dense_no_neuron", "average")
BOTH_ENCODINGS = {"graded"}


def _frames(net, kind, rng, n=SAMPLES):
    shape = net.input_shape
    if kind == "bias":       # signed bias mantissas of the input neuron
        return 2 * rng.integers(-20, 80, size=(n,) + shape)
    if kind == "signed":
        return rng.integers(-128, 128, size=(n,) + shape)
    if kind == "graded":
        return rng.integers(0, 16, size=(n,) + shape)
    return (rng.random((n,) + shape) < 0.5).astype(np.int64)


def _assert_same(got, want, what=""):
    assert set(got) == set(want), (what, set(got) ^ set(want))
    for k in want:
        assert got[k].dtype == np.int32 and got[k].shape == want[k].shape, (what, k)
        np.testing.assert_array_equal(got[k], want[k], err_msg=f"{what} {k}")


def _check_engine(net, frames, steps, uv=True, batches=(1, 2, SAMPLES)):
    """The engine equals the oracle for every chunk size and neuron implementation; returns
    the oracle's counts."""
    want = forward(net.ir, frames, steps, record_uv=uv)
    for nat in PATHS:
        for bs in batches:
            got = ExactEngine(net.ir, native=nat, batch_size=bs).run(frames, steps, record_uv=uv)
            _assert_same(got, want, f"native={nat} batch={bs}")
    return want


def _cases():
    for feature in FEATURES:
        for seed in (0, 1):
            for enc in (("graded", "binary") if feature in BOTH_ENCODINGS else ("graded",)):
                yield pytest.param(feature, seed, enc, id=f"{feature}-{seed}-{enc}")


@pytest.mark.parametrize("feature,seed,enc", list(_cases()))
def test_lavadl_block_nets_equal_oracle(tmp_path, feature, seed, enc):
    info = nets.make_net(feature, seed, tmp_path / f"{feature}{seed}.net")
    rng = np.random.default_rng(seed)
    with qblif.compile(info["path"], encoding=enc) as net:
        frames = _frames(net, info["input_kind"], rng)
        want = _check_engine(net, frames, T)
        lys = layers(net.ir)
        assert want[1].sum() > 0, "a silent network"
        if feature == "graded":
            assert want[1].max() > 1, "no graded payload"
        if feature in ("affine", "dense_no_neuron"):     # the readout integrates: v moves
            assert np.abs(want[("v", len(lys) - 1)]).sum() > 0


def _delay_net(tmp_path, rng):
    """QB-LIF dense net: per-output delays (with a bias, so the layer fires before its first
    window), per-synapse delays, per-input delays; delays up to 6 > T."""
    specs = [{"type": "input", "shape": np.array([6])}]
    sizes = (6, 5, 4, 3)
    for j, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        specs.append({"type": "dense", "shape": np.array([b]), "weight": even_weights(rng, (b, a)),
                      "neuron": qblif_neuron(rng, b, 3, "subtract", j == 0, 60 - 10 * j)})
    specs[1]["bias"] = rng.integers(20, 60, size=5).astype(np.float32)
    specs[1]["delay"] = rng.integers(0, 4, size=5).astype(np.float32)
    specs[2]["delay"] = rng.integers(0, 7, size=(4, 5)).astype(np.float32)
    specs[3]["delay"] = rng.integers(0, 5, size=4).astype(np.float32)      # per input
    return write_net(tmp_path / "delay.net", specs, input_shape=(6,))


def _conv_delay_net(tmp_path, rng):
    """Conv with per-neuron delays (CUBA), pool, flatten, dense with per-synapse delays."""
    specs = [{"type": "input", "shape": np.array([2, 6, 6])},
             {"type": "conv", "shape": np.array([3, 6, 6]), "kernelSize": np.array([3, 3]),
              "stride": np.array([1, 1]), "padding": np.array([1, 1]),
              "dilation": np.array([1, 1]), "groups": 1,
              "weight": even_weights(rng, (3, 2, 3, 3), 60), "neuron": cuba_neuron(rng, 60),
              "delay": rng.integers(0, 4, size=(3, 6, 6)).astype(np.float32)},
             {"type": "pool", "shape": np.array([3, 3, 3]), "kernelSize": np.array([2, 2]),
              "stride": np.array([2, 2]), "padding": np.array([0, 0]),
              "dilation": np.array([1, 1]), "weight": np.full((1, 1, 2, 2), 64, np.float32),
              "neuron": qblif_neuron(rng, 3, 2, "zero", True, 80)},
             {"type": "flatten", "shape": np.array([27, 1, 1])},
             {"type": "dense", "shape": np.array([5]), "weight": even_weights(rng, (5, 27)),
              "delay": rng.integers(0, 9, size=(5, 27)).astype(np.float32),
              "neuron": qblif_neuron(rng, 5, 4, "subtract", False, 120)}]
    return write_net(tmp_path / "cdelay.net", specs, input_shape=(2, 6, 6))


def _sdnn_delay_net(tmp_path, rng):
    """QB-LIF -> SDNN (bias, per-output delays: never cleared) -> QB-LIF (per-synapse delays)
    -> Sigma (per-output delays) -> average."""
    specs = [{"type": "input", "shape": np.array([8])},
             {"type": "dense", "shape": np.array([7]), "weight": even_weights(rng, (7, 8)),
              "neuron": qblif_neuron(rng, 7, 3, "subtract", False, vth_scale=60)},
             {"type": "dense", "shape": np.array([6]), "weight": even_weights(rng, (6, 7)),
              "bias": rng.integers(-20, 20, size=6),
              "delay": rng.integers(0, 6, size=6).astype(np.float32),
              "neuron": {"type": "SDNN", "activation": "relu", "vThMant": 0}},
             {"type": "dense", "shape": np.array([5]), "weight": even_weights(rng, (5, 6)),
              "delay": rng.integers(0, 4, size=(5, 6)).astype(np.float32),
              "neuron": qblif_neuron(rng, 5, 2, "zero", False, vth_scale=100)},
             {"type": "dense", "shape": np.array([4]), "weight": even_weights(rng, (4, 5)),
              "delay": rng.integers(0, 5, size=4).astype(np.float32),
              "neuron": {"type": "SDNN", "activation": "relu", "vThMant": 0,
                         "sigma_output": True}},
             {"type": "average", "shape": np.array([2, 1, 1])}]
    return write_net(tmp_path / "sdelay.net", specs, input_bits=4)


def _graded_rec_net(tmp_path, rng):
    """A recurrent graded-spike CUBA layer (its payloads fed back, its spikes delayed per
    neuron) into a dense layer with a uniform delay, a QB-LIF dense_rec with per-synapse
    input delays (DelayDense, never cleared), an average."""
    g = dict(cuba_neuron(rng, 40), gradedSpike=True)
    specs = [{"type": "input", "shape": np.array([6])},
             {"type": "dense_rec", "shape": np.array([5]), "weight": even_weights(rng, (5, 6)),
              "weight_rec": even_weights(rng, (5, 5), 20), "neuron": g,
              "delay": rng.integers(0, 3, size=5).astype(np.float32)},
             {"type": "dense", "shape": np.array([6]), "weight": even_weights(rng, (6, 5)),
              "delay": np.full(6, 2, np.float32), "neuron": qblif_neuron(rng, 6, 3, "zero",
                                                                         True, 300)},
             {"type": "dense_rec", "shape": np.array([4]), "weight": even_weights(rng, (4, 6)),
              "weight_rec": even_weights(rng, (4, 4), 60),
              "delay": rng.integers(0, 4, size=(4, 6)).astype(np.float32),
              "neuron": qblif_neuron(rng, 4, 2, "subtract", False, 60)},
             {"type": "average", "shape": np.array([2, 1, 1])}]
    return write_net(tmp_path / "grec.net", specs, input_shape=(6,))


RANDOM_NETS = {"delay": (_delay_net, 3), "conv_delay": (_conv_delay_net, 4),
               "sdnn_delay": (_sdnn_delay_net, 5), "graded_rec": (_graded_rec_net, 6)}


@pytest.mark.parametrize("name", list(RANDOM_NETS))
@pytest.mark.parametrize("seed", [0, 1])
def test_random_kind_nets_equal_oracle(tmp_path, name, seed):
    """Delays longer than T reach into earlier samples (per-synapse / per-input, SDNN) and
    across chunks; the chunk sizes 1, 2 and all test the carry."""
    build, steps = RANDOM_NETS[name]
    rng = np.random.default_rng(seed)
    path = build(tmp_path, rng)
    with qblif.compile(path, input_bits=4) as net:
        stateful = net.ir.graph["stateful"]
        frames = rng.integers(0, 16, size=(SAMPLES,) + net.input_shape)
        want = _check_engine(net, frames, steps, uv=not stateful, batches=(1, 2, 3, SAMPLES))
        assert all(np.abs(want[i]).sum() > 0 for i in want if isinstance(i, int)), "silent"
        # the features matter: without them the oracle differs
        for ly in layers(net.ir):
            ly.delay, ly.weight_rec = None, None
        bare = forward(net.ir, frames, steps)
        assert any(np.any(bare[i] != want[i]) for i in bare)


def test_refusals(tmp_path):
    """What the per-sample chunks refuse is one NotImplementedError naming the layer: a
    recurrent SDNN layer (``run`` takes it on the timeline: tests/test_exact_engine_modes.py);
    delays that reach into earlier samples under ``layer_steps`` (``qblif evaluate``'s
    truncated windows). (Resonate-and-fire runs on the timeline.)"""
    import copy
    info = nets.make_net("recurrent", 0, tmp_path / "rec.net")
    with qblif.compile(info["path"]) as net:
        ir = copy.deepcopy(net.ir)
    ir.nodes[1]["layer"].neuron.kind = "SDNN"
    with pytest.raises(NotImplementedError, match="layer 1: .*recurrent"):
        next(ExactEngine(ir).chunks(np.zeros((1, 8), int), 4))
    with qblif.compile(_delay_net(tmp_path, np.random.default_rng(0))) as net:
        eng = ExactEngine(net.ir)
        with pytest.raises(NotImplementedError, match="layer 2: .*earlier samples"):
            next(eng.chunks(np.zeros((2, 6), int), 4, layer_steps={1: 4, 2: 3, 3: 2}))
        from qblif.exact.evaluate import engine_refusal
        assert "layer 2" in engine_refusal(net.ir)     # qblif evaluate falls back to SLAYER


#: (builder, input kind, encoding): one network per feature through Lava
LAVA_CASES = [("input_neuron", "graded"), ("recurrent_delay", "graded"), ("graded", "binary"),
              ("conv_delay", "graded"), ("dense_no_neuron", "graded"), ("average", "graded")]


def test_engine_equals_lava(tmp_path):
    """``net.run(engine="exact")`` equals the compiled Lava run on every layer and step (u, v
    included) for one network per feature, and for the random networks (per-output /
    per-input / per-synapse delays, a recurrent graded layer, SDNN delays and an average,
    per-neuron conv delays)."""
    rng = np.random.default_rng(9)
    cases = []
    for feature, enc in LAVA_CASES:
        info = nets.make_net(feature, 0, tmp_path / f"{feature}.net")
        cases.append((info["path"], info["input_kind"], enc))
    cases += [(build(tmp_path, rng), "graded", "graded") for build in
              (_delay_net, _graded_rec_net, _sdnn_delay_net, _conv_delay_net)]
    for path, kind, enc in cases:
        with qblif.compile(path, encoding=enc, input_bits=4) as net:
            frames = _frames(net, kind, rng, 3)
            uv = not net.ir.graph["stateful"]
            lava = net.run(frames, 6, record_uv=uv)
            exact = net.run(frames, 6, record_uv=uv, engine="exact")
        _assert_same(exact, lava, str(path))
        assert any(np.abs(v).sum() > 0 for k, v in lava.items() if isinstance(k, int))


def test_evaluate_of_a_recurrent_delay_network_equals_slayer(tmp_path):
    """``qblif evaluate`` through the engine (T + latency steps, the delays' share of the
    latency included) gives SLAYER's card fields for a QB-LIF recurrent + delay network
    (lava-dl's output delay on the dense_rec layer, an input delay on the dense layer)."""
    pytest.importorskip("sklearn")
    from qblif.exact.evaluate import evaluate_file
    from qblif.training.slayer.hdf5 import export_network
    from qblif.training.train import evaluate_file as slayer_evaluate
    from test_slayer_recurrent_delay import IN_BITS, T_IN, _digits_model
    path = tmp_path / "rec.net"
    export_network(_digits_model(seed=1), path, input_shape=(64,), input_bits=IN_BITS,
                   timesteps=T_IN, dataset="digits")
    got = evaluate_file(str(path), test_limit=60)
    want = slayer_evaluate(str(path), test_limit=60)
    assert got["spikes_per_neuron_step"] > 0
    for key in ("test_samples", "test_accuracy", "spikes_per_neuron_step"):
        assert got[key] == want[key], key
    assert got["synops_per_sample"] == pytest.approx(want["synops_per_sample"], rel=1e-6)
