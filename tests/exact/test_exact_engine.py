"""The batched exact engine (qblif.exact) computes what the compiled Lava graph computes,
count for count: its neuron kernels equal qblif.core.reference on wrap and clip cases; its
synapses equal qblif.core.numeric on every exactness path (float32, float64, int64, the 24-bit
and int32 wraps); whole networks equal qblif.exact.oracle (shipped models and random networks of
every layer kind, SDNN streaming included) and Lava; ``qblif evaluate`` through the engine gives
SLAYER's card fields. CPU only (a CUDA test runs where a GPU is present)."""
from __future__ import annotations

import glob
import json
import os

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import qblif  # noqa: E402
from qblif.core import numeric  # noqa: E402
from qblif.exact import ExactEngine, native  # noqa: E402
from qblif.exact import ops as ex  # noqa: E402
from qblif.exact.oracle import forward  # noqa: E402
from qblif.ir import Layer, Neuron, layers  # noqa: E402
from qblif.core import reference  # noqa: E402
from test_compiler_writer import (conv_net, dense_net, even_weights, qblif_neuron,  # noqa: E402
                                  write_net)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODELS = sorted(glob.glob(os.path.join(ROOT, "netx_models", "*.net")))
HAVE_NATIVE = native.library() is not None
PATHS = [False, True] if HAVE_NATIVE else [False]       # native kernel off / on


def _frames(net, n, seed=0):
    """The first n test images of the card's dataset, as ``qblif run`` feeds them."""
    from qblif.core.data import load_dataset
    from qblif.core.encoding import quantize_intensity
    x, _ = load_dataset(net.ir.graph["dataset"], "test", n)
    return quantize_intensity(x, int(net.ir.graph["input_bits"])).reshape((n,) + net.input_shape)


def _assert_same(got, want, what=""):
    assert set(got) == set(want), what
    for k in want:
        assert got[k].dtype == np.int32 and got[k].shape == want[k].shape, (what, k)
        np.testing.assert_array_equal(got[k], want[k], err_msg=f"{what} {k}")


# ----------------------------------------------------------------------------- neuron kernels

def _population(rng, n, k, reset, du, dv, bias):
    vth = rng.integers(1, 2 ** 10, size=n)
    mant = rng.integers(-4096, 4096, size=n) if bias else 0
    exp = rng.integers(-7, 8, size=n) if bias else 0
    neuron = Neuron("QBLIF", du=du, dv=dv, vth=vth, bias_mant=mant, bias_exp=exp, max_burst=k,
                    reset_mode=reset)
    return Layer(index=0, kind="dense", shape=(n,), neuron=neuron)


def _reference(ly, a):
    """reference.simulate per sample: counts, u, v of shape (B, T, N)."""
    n = ly.neuron
    res = [reference.simulate(s, du=n.du, dv=n.dv, vth=n.vth, bias_mant=n.bias_mant,
                              bias_exp=n.bias_exp, max_burst=n.max_burst,
                              reset_mode=n.reset_mode, record=True) for s in a]
    return [np.stack([r[j] for r in res]).astype(np.int32) for j in range(3)]


def _inputs(rng, b, t, n, wide):
    if wide:     # the whole int32 range, and values whose a << 6 wraps u around 2^23
        a = rng.integers(-2 ** 31, 2 ** 31, size=(b, t, n), dtype=np.int64)
        a[:, :, : n // 2] = rng.integers(-2 ** 18, 2 ** 18, size=(b, t, n // 2))
        return a.astype(np.int32)
    return rng.integers(-2 ** 17 + 1, 2 ** 17, size=(b, t, n)).astype(np.int32) // \
        rng.integers(1, 2 ** 9, size=(1, 1, n)).astype(np.int32)


@pytest.mark.parametrize("k,reset", [(1, "zero"), (4, "subtract"), (8, "zero"), (9, "subtract"),
                                     (255, "subtract")])
@pytest.mark.parametrize("du,dv,bias", [(4095, 0, False), (4095, 0, True), (1000, 37, True),
                                        (0, 4095, False)])
def test_neuron_steps_equal_reference(k, reset, du, dv, bias):
    rng = np.random.default_rng(k * 7 + du + dv)
    ly = _population(rng, 64, k, reset, du, dv, bias)
    p = ex.QBLIFParams.of(ly)
    for wide in (False, True):
        a = _inputs(rng, 3, 12, 64, wide)
        n_ref, u_ref, v_ref = _reference(ly, a)
        if wide:   # the wrap and clip cases are exercised
            assert (np.abs(u_ref) > 2 ** 23).any() or (u_ref == -2 ** 23).any() \
                or (np.abs(v_ref) == reference.V_MAX).any()
        assert (n_ref > 0).any()
        at = torch.as_tensor(a)
        narrow = ex.is_narrow(p, at, None)
        assert narrow == (not wide)
        steps = [(False, "torch wide")] + ([(True, "torch narrow")] if narrow else [])
        for nar, what in steps:
            res = ex.qblif_scan(p.on("cpu"), at, False, 12, True, nar)
            for got, want, var in zip((res["n"], res["u"], res["v"]), (n_ref, u_ref, v_ref), "nuv"):
                np.testing.assert_array_equal(got.numpy(), want, err_msg=f"{what} {var}")
        for nar in ([False, narrow] if HAVE_NATIVE else []):
            for dtype in (torch.int32, torch.float64, torch.int64):
                res = native.qblif_scan(p, at.to(dtype), False, 0, 12, True, 2, nar)
                for got, want, var in zip((res["n"], res["u"], res["v"]), (n_ref, u_ref, v_ref),
                                          "nuv"):
                    np.testing.assert_array_equal(got.numpy(), want,
                                                  err_msg=f"native narrow={nar} {dtype} {var}")


def test_static_input_and_input_wraps_in_the_native_kernel():
    """A static input (the same frame on every step) and the synapse's wraps applied inside
    the kernel (24-bit for conv, int32 for dense) equal the wrapped input run step by step."""
    if not HAVE_NATIVE:
        pytest.skip("no C compiler")
    rng = np.random.default_rng(5)
    ly = _population(rng, 50, 3, "subtract", 4095, 0, False)
    p = ex.QBLIFParams.of(ly)
    raw = torch.as_tensor(rng.integers(-2 ** 40, 2 ** 40, size=(2, 50)))
    for wrap in (24, 32):
        a = ex.as_int32(raw, wrap)
        want = _reference(ly, np.repeat(a.numpy()[:, None], 5, axis=1))[0]
        got = native.qblif_scan(p, raw.double(), True, wrap, 5, False, 1)["n"]
        np.testing.assert_array_equal(got.numpy(), want)
        got = ex.qblif_scan(p.on("cpu"), a, True, 5, False)["n"]
        np.testing.assert_array_equal(got.numpy(), want)


# ----------------------------------------------------------------------------- synapses

def _conv_layer(rng, c_in, c_out, hw, groups=1, stride=(1, 1), padding=(1, 1), dilation=(1, 1),
                wmax=40):
    k = 3
    oh = (hw[0] + 2 * padding[0] - dilation[0] * (k - 1) - 1) // stride[0] + 1
    ow = (hw[1] + 2 * padding[1] - dilation[1] * (k - 1) - 1) // stride[1] + 1
    w = rng.integers(-wmax, wmax + 1, size=(c_out, c_in // groups, k, k))
    return Layer(index=1, kind="conv", shape=(c_out, oh, ow), weight=w, stride=stride,
                 padding=padding, dilation=dilation, groups=groups, in_shape=(c_in, *hw))


def _check_synapse(ly, x, xmax, library=True, monkeypatch=None):
    """The engine's synapse of ``ly`` on file-order ``x (M, *in_shape)`` equals numeric.synapse."""
    syn = ex.SYNAPSES[ly.kind][0](ly)
    xt = torch.as_tensor(x)
    if xt.dim() == 4:
        xt = xt.permute(0, 2, 3, 1).contiguous()
    if not library:
        monkeypatch.setattr(ex, "_library_conv", lambda *a: None)
    raw, wrap = ex.SYNAPSES[ly.kind][1](syn, xt, xmax)
    got = ex.as_int32(raw, wrap)
    if got.dim() == 4:
        got = got.permute(0, 3, 1, 2)
    want = np.stack([numeric.synapse(ly, s).reshape(ly.shape) for s in x])
    np.testing.assert_array_equal(got.numpy(), want.astype(np.int32))
    return ex.gemm_dtype(syn.abs_sum * xmax), want


@pytest.mark.parametrize("library", [True, False], ids=["torch-conv", "im2col"])
@pytest.mark.parametrize("case", ["small", "f64", "int64"])
def test_conv_paths_equal_numeric(case, library, monkeypatch):
    rng = np.random.default_rng(1)
    specs = [dict(c_in=4, c_out=6, hw=(7, 9)),
             dict(c_in=4, c_out=6, hw=(8, 8), groups=2, stride=(1, 2), dilation=(2, 1)),
             dict(c_in=3, c_out=2, hw=(5, 6), padding=(0, 2))]
    for spec in specs:
        if case == "small":
            ly = _conv_layer(rng, **spec)
            x = rng.integers(0, 5, size=(3,) + ly.in_shape)
            dtype, _ = _check_synapse(ly, x, 4, library, monkeypatch)
            assert dtype == torch.float32
        elif case == "f64":     # sums beyond 2^24: float64, and the 24-bit wrap happens
            ly = _conv_layer(rng, wmax=2 ** 7, **spec)
            x = rng.integers(-2 ** 20, 2 ** 20, size=(3,) + ly.in_shape)
            dtype, want = _check_synapse(ly, x, 2 ** 20, library, monkeypatch)
            assert dtype == torch.float64
            full = np.stack([numeric.conv2d(s, ly.weight, ly.stride, ly.padding, ly.dilation,
                                            ly.groups, ly.shape[1:]) for s in x])
            assert (full != want).any(), "no 24-bit wrap exercised"
        else:                   # beyond 2^53: int64
            ly = _conv_layer(rng, wmax=2 ** 24, **spec)
            x = rng.integers(-2 ** 31, 2 ** 31, size=(2,) + ly.in_shape)
            dtype, _ = _check_synapse(ly, x, 2 ** 31, library, monkeypatch)
            assert dtype is None


@pytest.mark.parametrize("xmax,wmax,dtype", [(15, 60, torch.float32), (2 ** 31, 2 ** 8, torch.float64),
                                             (2 ** 31, 2 ** 26, None)])
def test_dense_paths_equal_numeric(xmax, wmax, dtype):
    """Float32, float64 and int64 products, and the int32 wrap of Lava's Dense beyond 2^31."""
    rng = np.random.default_rng(2)
    ly = Layer(index=0, kind="dense", shape=(9,), in_shape=(300,),
               weight=rng.integers(-wmax, wmax + 1, size=(9, 300)))
    x = rng.integers(-xmax + 1, xmax, size=(4, 300))
    got, want = _check_synapse(ly, x, xmax)
    assert got == dtype
    if dtype != torch.float32:
        assert (np.abs(ly.weight.astype(object) @ x[0].astype(object)) >= 2 ** 31).any()


def test_pool_paths_equal_numeric():
    rng = np.random.default_rng(3)
    for k, x_hi, stride, pad in [(np.full((2, 2), 64), 5, (2, 2), (0, 0)),
                                 (np.array([[1, -3], [7, 2]]), 2 ** 24, (1, 2), (1, 0))]:
        oh = (7 + 2 * pad[0] - 2) // stride[0] + 1
        ow = (6 + 2 * pad[1] - 2) // stride[1] + 1
        ly = Layer(index=0, kind="pool", shape=(3, oh, ow), weight=k, stride=stride, padding=pad,
                   in_shape=(3, 7, 6))
        _check_synapse(ly, rng.integers(-x_hi, x_hi, size=(2, 3, 7, 6)), x_hi)


# ----------------------------------------------------------------------------- whole networks

@pytest.mark.parametrize("path", MODELS, ids=[os.path.basename(p) for p in MODELS])
def test_shipped_models_equal_oracle(path):
    with qblif.compile(path) as net:
        frames = _frames(net, 3)
        steps = int(net.ir.graph["timesteps"])
        want = forward(net.ir, frames, steps, record_uv=True)
        for nat in PATHS:
            got = ExactEngine(net.ir, native=nat, batch_size=2).run(frames, steps, record_uv=True)
            _assert_same(got, want, f"native={nat}")
        assert want[net.output_index].sum() > 0


def _random_nets(tmp_path):
    rng = np.random.default_rng(11)
    nets = []
    for k, reset, per_channel, cuba in [(1, "zero", False, ()), (2, "subtract", True, (1,)),
                                        (15, "subtract", False, ())]:
        specs, shape = dense_net(rng, (12, 9, 7, 5), k=k, reset_mode=reset,
                                 per_channel=per_channel, cuba=cuba)
        nets.append((write_net(tmp_path / f"d{k}.net", specs, shape), shape))
    for k, reset, pool in [(2, "zero", True), (4, "subtract", False)]:
        specs, shape = conv_net(rng, c_in=2, hw=6, k=k, reset_mode=reset, pool=pool)
        nets.append((write_net(tmp_path / f"c{k}.net", specs, shape), shape))
    # grouped, strided, dilated conv on a non-square input
    specs, shape = conv_net(rng, c_in=2, hw=6, k=3, reset_mode="subtract", pool=False)
    specs[0]["shape"] = np.array([2, 6, 9])
    conv = specs[1]
    conv.update(groups=2, outChannels=4, stride=np.array([1, 2]), dilation=np.array([2, 1]),
                weight=even_weights(rng, (4, 1, 3, 3)),
                neuron=qblif_neuron(rng, 4, 3, "subtract", True, 120))
    h, w = (6 + 2 - 4 - 1) // 1 + 1, (9 + 2 - 2 - 1) // 2 + 1
    conv["shape"] = np.array([4, h, w])
    specs[-2]["shape"] = np.array([4 * h * w, 1, 1])
    specs[-1].update(weight=even_weights(rng, (5, 4 * h * w)), inFeatures=4 * h * w)
    nets.append((write_net(tmp_path / "g.net", specs, (2, 6, 9)), (2, 6, 9)))
    return nets


def test_random_networks_equal_oracle(tmp_path):
    rng = np.random.default_rng(12)
    kinds = set()
    for path, shape in _random_nets(tmp_path):
        with qblif.compile(path) as net:
            kinds |= {(ly.kind, ly.neuron.kind if ly.neuron else None) for ly in layers(net.ir)}
            frames = rng.integers(0, 16, size=(5,) + shape)
            want = forward(net.ir, frames, 6, record_uv=True)
            for nat in PATHS:
                for bs in (1, 4):
                    got = ExactEngine(net.ir, native=nat, batch_size=bs).run(frames, 6,
                                                                             record_uv=True)
                    _assert_same(got, want, f"{path.name} native={nat} batch={bs}")
            # only some layers, and no u, v
            got = ExactEngine(net.ir).run(frames, 6, layers_to_record=[net.output_index])
            _assert_same(got, {net.output_index: want[net.output_index]})
            assert want[net.output_index].sum() > 0, f"{path.name} is silent"
    assert {("dense", "QBLIF"), ("dense", "CUBA"), ("conv", "QBLIF"), ("pool", "QBLIF"),
            ("flatten", None)} <= kinds


def _sdnn_nets(tmp_path):
    from test_compiler_sdnn import _sdnn_conv, _sdnn_dense, mixed_sdnn_net
    mixed = mixed_sdnn_net(tmp_path / "mixed.net", 4, np.random.default_rng(3))
    return [(mixed, (8,)), _sdnn_dense(tmp_path), _sdnn_conv(tmp_path)]


def test_sdnn_networks_stream_like_the_oracle(tmp_path):
    """SigmaDelta, Sigma and Delta (encoder) layers carry their state from sample to sample
    and from chunk to chunk, from the oracle's warm-up state."""
    rng = np.random.default_rng(4)
    procs = set()
    for path, shape in _sdnn_nets(tmp_path):
        with qblif.compile(path, input_bits=4) as net:
            procs |= {ly.proc for ly in layers(net.ir)}
            frames = rng.integers(0, 16, size=(4,) + tuple(shape))
            want = forward(net.ir, frames, 5)
            for nat in PATHS:
                for bs in (1, 3):
                    got = ExactEngine(net.ir, native=nat, batch_size=bs).run(frames, 5)
                    _assert_same(got, want, f"{path} native={nat} batch={bs}")
            assert any(np.abs(want[i]).sum() > 0 for i in want)
            with pytest.raises(NotImplementedError):
                ExactEngine(net.ir).run(frames, 5, record_uv=True)
    assert {"SigmaDelta", "Sigma", "Delta", "QBLIF"} <= procs


def test_engine_equals_lava(tmp_path):
    """``run(engine="exact")`` equals the Lava run on every layer and step: the shipped
    models, a random conv net, a mixed QB-LIF / SDNN net."""
    cases = [(p, None) for p in MODELS]
    conv_path, conv_shape = _random_nets(tmp_path)[-1]
    cases += [(conv_path, conv_shape), _sdnn_nets(tmp_path)[0]]
    rng = np.random.default_rng(6)
    for path, shape in cases:
        with qblif.compile(path, input_bits=4) as net:
            frames = _frames(net, 2) if shape is None else rng.integers(0, 16, size=(3,) + shape)
            steps = int(net.ir.graph.get("timesteps") or 4)
            lava = net.run(frames, steps)
            exact = net.run(frames, steps, engine="exact")
            assert net.last_run["engine"] == "exact" and "exact engine" in net.report()
            assert net.last_run["lava_steps"] == len(frames) * steps + net.ir.graph["depth"]
        _assert_same(exact, lava, str(path))
        assert any(np.abs(v).sum() > 0 for v in lava.values())


# ----------------------------------------------------------------------------- evaluate, CLI

@pytest.mark.parametrize("path", MODELS, ids=[os.path.basename(p) for p in MODELS])
def test_evaluate_equals_slayer(path):
    """The card fields through the engine equal SLAYER's evaluate (SLAYER sums SynOps in
    float32, so those agree to its rounding; the engine's are exact)."""
    from qblif.exact.evaluate import evaluate_file
    from qblif.training.train import evaluate_file as slayer_evaluate
    got = evaluate_file(path, test_limit=40, latency_window=True)   # simulates T + latency
    want = slayer_evaluate(path, test_limit=40)
    assert got.pop("windows") == "T"      # counted over each layer's T-step window, as SLAYER
    assert set(got) == set(want)
    fast = evaluate_file(path, test_limit=40)     # simulates T steps only: the same figures
    assert fast.pop("windows") == "T"
    for key in ("test_accuracy", "spikes_per_neuron_step", "synops_per_sample"):
        assert fast[key] == got[key], key
    for key in ("dataset", "test_samples", "test_accuracy", "spikes_per_neuron_step"):
        assert got[key] == want[key], key
    for key in ("synops_per_sample", "spike_synops_per_sample", "input_synops_per_sample"):
        assert got[key] == pytest.approx(want[key], rel=1e-6), key
    assert got["spike_synops_per_sample"] > 0


def test_evaluate_refuses_what_slayer_sees_differently(tmp_path):
    from qblif.exact.evaluate import engine_refusal
    rng = np.random.default_rng(0)
    specs, shape = dense_net(rng, (6, 4))
    with qblif.compile(write_net(tmp_path / "ok.net", specs, shape)) as net:
        assert engine_refusal(net.ir) is None
    specs[1]["bias"] = np.full(4, 3)
    with qblif.compile(write_net(tmp_path / "bias.net", specs, shape)) as net:
        assert "bias" in engine_refusal(net.ir)
    with qblif.compile(_sdnn_nets(tmp_path)[0][0], input_bits=4) as net:
        assert "SDNN" in engine_refusal(net.ir)


def test_cli_run_with_the_exact_engine(capsys):
    from qblif.cli.main import main
    digits = [p for p in MODELS if "digits" in p][0]
    rc = main(["run", digits, "--dataset", "digits", "--samples", "20", "--engine", "exact",
               "--check"])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "exact engine" in out and "check: every layer's counts equal SLAYER" in out
    card = json.load(open(digits[:-4] + ".json"))
    assert card["dataset"] == "digits"
    with pytest.raises(SystemExit):
        main(["run", digits, "--dataset", "digits", "--engine", "fast"])


def test_bad_input_is_one_clear_error():
    with qblif.compile(MODELS[0]) as net:
        eng = ExactEngine(net.ir)
        with pytest.raises(ValueError, match="expected"):
            eng.run(np.zeros((2, 3)), 4)
        with pytest.raises(ValueError, match="steps"):
            eng.run(np.zeros((1,) + net.input_shape, int), 0)
        with pytest.raises(ValueError, match="engine"):
            net.run(np.zeros((1,) + net.input_shape, int), 2, engine="fast")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_equals_cpu():
    for path in MODELS:
        with qblif.compile(path) as net:
            frames = _frames(net, 16)
            steps = int(net.ir.graph["timesteps"])
            _assert_same(ExactEngine(net.ir, device="cuda").run(frames, steps, record_uv=True),
                         ExactEngine(net.ir).run(frames, steps, record_uv=True), path)


def test_fused_pooling_equals_oracle(tmp_path, monkeypatch):
    """Pooling computed inside the native kernel (uniform kernel, stride = kernel, du = 4095,
    dv = 0): on the frame itself (static, int32) and on counts (uint8), per-channel thresholds,
    a bias, both resets, an odd input size (the last row and column unused)."""
    if not HAVE_NATIVE:
        pytest.skip("no C compiler")
    rng = np.random.default_rng(21)
    calls = []
    real = native.qblif_scan_pool
    monkeypatch.setattr(native, "qblif_scan_pool", lambda *a, **k: calls.append(1) or real(*a, **k))

    def pool_layer(c, side, reset, k):
        neuron = dict(qblif_neuron(rng, c, k, reset, True, 100), iDecay=4096, vDecay=0)
        return {"type": "pool", "shape": np.array([c, side, side]),
                "kernelSize": np.array([2, 2]), "stride": np.array([2, 2]),
                "padding": np.array([0, 0]), "dilation": np.array([1, 1]),
                "weight": np.full((1, 1, 2, 2), 6, np.float32), "neuron": neuron}
    specs = [{"type": "input", "shape": np.array([3, 9, 9])}, pool_layer(3, 4, "subtract", 3),
             {"type": "conv", "shape": np.array([4, 4, 4]), "inChannels": 3, "outChannels": 4,
              "kernelSize": np.array([3, 3]), "stride": np.array([1, 1]),
              "padding": np.array([1, 1]), "dilation": np.array([1, 1]), "groups": 1,
              "weight": even_weights(rng, (4, 3, 3, 3)),
              "neuron": dict(qblif_neuron(rng, 4, 2, "zero", True, 150), iDecay=4096, vDecay=0)},
             pool_layer(4, 2, "zero", 2),
             {"type": "flatten", "shape": np.array([16, 1, 1])},
             {"type": "dense", "shape": np.array([5]), "inFeatures": 16, "outFeatures": 5,
              "weight": even_weights(rng, (5, 16)),
              "neuron": qblif_neuron(rng, 5, 2, "subtract", False, 100)}]
    specs[3]["bias"] = rng.integers(-30, 30, size=4)
    path = write_net(tmp_path / "pool.net", specs, (3, 9, 9))
    with qblif.compile(path) as net:
        frames = rng.integers(0, 16, size=(4, 3, 9, 9))
        want = forward(net.ir, frames, 5, record_uv=True)
        got = ExactEngine(net.ir, native=True, batch_size=3).run(frames, 5, record_uv=True)
    _assert_same(got, want, "fused")
    assert len(calls) == 4, "both pooling layers fused, in both chunks"
    assert want[1].max() > 1 and want[3].sum() > 0


def test_fused_sparse_conv_and_dense_equal_oracle(tmp_path, monkeypatch):
    """Conv and dense synapses computed inside the native kernel from the non-zero inputs
    (``conv_scan``, du = 4095, dv = 0): a conv on the frame (static int32) with stride 2 and
    padding, a dilated conv on counts (uint8) with 72 output channels (a 64-wide tile, an 8-wide
    one) and K = 10 (the division path), a dense of 5 outputs (a scalar tail); per-channel
    thresholds, a bias, both resets, u and v recorded, two chunks."""
    if not HAVE_NATIVE:
        pytest.skip("no C compiler")
    rng = np.random.default_rng(22)
    calls = []
    real = native.conv_scan
    monkeypatch.setattr(native, "conv_scan", lambda *a, **k: calls.append(1) or real(*a, **k))

    def fast(c, k, reset, vth):
        return dict(qblif_neuron(rng, c, k, reset, True, vth), iDecay=4096, vDecay=0)

    def conv(cin, cout, side, stride, pad, dil, k, reset, vth):
        return {"type": "conv", "shape": np.array([cout, side, side]), "inChannels": cin,
                "outChannels": cout, "kernelSize": np.array([3, 3]),
                "stride": np.array([stride, stride]), "padding": np.array([pad, pad]),
                "dilation": np.array([dil, dil]), "groups": 1,
                "weight": even_weights(rng, (cout, cin, 3, 3)), "neuron": fast(cout, k, reset, vth)}
    specs = [{"type": "input", "shape": np.array([2, 9, 9])},
             conv(2, 12, 5, 2, 1, 1, 3, "subtract", 60),
             conv(12, 72, 5, 1, 2, 2, 10, "zero", 40),
             {"type": "flatten", "shape": np.array([1800, 1, 1])},
             {"type": "dense", "shape": np.array([5]), "inFeatures": 1800, "outFeatures": 5,
              "weight": even_weights(rng, (5, 1800), 4), "neuron": fast(5, 2, "subtract", 100)}]
    specs[1]["bias"] = rng.integers(-30, 30, size=12)
    path = write_net(tmp_path / "sparse.net", specs, (2, 9, 9))
    with qblif.compile(path) as net:
        frames = rng.integers(0, 16, size=(4, 2, 9, 9))
        want = forward(net.ir, frames, 5, record_uv=True)
        got = ExactEngine(net.ir, native=True, batch_size=3).run(frames, 5, record_uv=True)
        plain = ExactEngine(net.ir, native=False, batch_size=3).run(frames, 5, record_uv=True)
    _assert_same(got, want, "fused")
    _assert_same(plain, want, "torch")
    assert len(calls) == 6, "all three synaptic layers fused, in both chunks"
    assert want[1].max() > 1 and want[2].max() > 8 and want[4].sum() > 0


def test_quantize_by_lookup_table_equals_quantize_intensity():
    """``qblif evaluate`` quantizes the stored bytes by a 256-entry table: the same int32
    frames as ``quantize_intensity`` of ``load_dataset``'s float images, every input width."""
    from qblif.core.data import load_dataset, load_dataset_u8
    from qblif.core.encoding import quantize_intensity, quantize_u8
    for name, limit in (("digits", None), ("fashion-mnist", 500)):
        x, y = load_dataset(name, "test", limit)
        xu, scale, yu = load_dataset_u8(name, "test", limit)
        np.testing.assert_array_equal(yu, y)
        for bits in range(1, 9):
            want = quantize_intensity(x, bits)
            got = quantize_u8(xu, scale, bits).reshape(want.shape)
            assert got.dtype == want.dtype
            np.testing.assert_array_equal(got, want, err_msg=f"{name} bits={bits}")


def test_fused_sparse_conv_non_square_geometry(tmp_path, monkeypatch):
    """``conv_scan`` on a non-square frame with a 3x2 kernel, strides (2, 1), padding (1, 0) and
    dilation (1, 2), then a 2x3 kernel with strides (1, 2) on counts: rows and columns are not
    swapped anywhere."""
    if not HAVE_NATIVE:
        pytest.skip("no C compiler")
    rng = np.random.default_rng(23)
    calls = []
    real = native.conv_scan
    monkeypatch.setattr(native, "conv_scan", lambda *a, **k: calls.append(1) or real(*a, **k))

    def conv(cin, cout, out_hw, k, stride, pad, dil, kk, vth):
        neuron = dict(qblif_neuron(rng, cout, kk, "subtract", True, vth), iDecay=4096, vDecay=0)
        return {"type": "conv", "shape": np.array([cout, *out_hw]), "inChannels": cin,
                "outChannels": cout, "kernelSize": np.array(k), "stride": np.array(stride),
                "padding": np.array(pad), "dilation": np.array(dil), "groups": 1,
                "weight": even_weights(rng, (cout, cin, *k)), "neuron": neuron}
    specs = [{"type": "input", "shape": np.array([2, 9, 8])},
             conv(2, 16, (5, 6), (3, 2), (2, 1), (1, 0), (1, 2), 4, 40),
             conv(16, 9, (4, 2), (2, 3), (1, 2), (0, 0), (1, 1), 4, 60)]
    path = write_net(tmp_path / "rect.net", specs, (2, 9, 8))
    with qblif.compile(path) as net:
        frames = rng.integers(0, 16, size=(3, 2, 9, 8))
        want = forward(net.ir, frames, 4, record_uv=True)
        got = ExactEngine(net.ir, native=True).run(frames, 4, record_uv=True)
    _assert_same(got, want, "fused, non-square")
    assert len(calls) == 2 and want[1].sum() > 0 and want[2].sum() > 0
