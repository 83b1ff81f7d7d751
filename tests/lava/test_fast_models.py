"""The fast synapse models (qblif.lava.fastsyn) equal Lava's own fixed_pt Dense and Conv.

Most cases drive both model classes in this process through stand-in ports that copy Lava's
port semantics (:mod:`qblif.lava.fastsyn.standin`), so hundreds of random cases run in
seconds. A real Lava run (processes, channels, virtual ports) then ties the two together,
and checks that nothing leaks.
"""
from __future__ import annotations

import numpy as np
import pytest
from lava.proc.conv.models import PyConvModelFixed
from lava.proc.conv.process import Conv
from lava.proc.dense.models import PyDenseModelBitAcc
from lava.proc.dense.process import Dense
from lava.utils.weightutils import SignMode

from qblif.lava.fastsyn import FastConvModel, FastDenseModel, fast_models
from qblif.lava.fastsyn.kernels import ExactMatrix, conv_plan, conv_sums, dense_tier, max_abs
from qblif.lava.fastsyn.standin import build_model, drive

I32 = np.iinfo(np.int32)


def _drive(model_cls, make, inputs, channel=np.int32):
    return drive(build_model(model_cls, make(), channel), inputs)


def _same(make, fast, stock, inputs, channel=np.int32):
    got = _drive(fast, make, inputs, channel)
    want = _drive(stock, make, inputs, channel)
    assert got.dtype == want.dtype and np.array_equal(got, want)
    return got


def _payloads(rng, shape, bits, steps):
    """Graded payloads of up to ``bits`` bits, signed, with zeros and the extremes."""
    hi = 2 ** min(bits, 31) - 1
    x = rng.integers(-hi, hi + 1, (steps,) + tuple(shape), dtype=np.int64)
    x[:, ::3] = 0
    flat = x.reshape(steps, -1)
    flat[:, -1] = hi
    flat[1:, 0] = -hi
    return x.astype(np.int32)


# ---------------------------------------------------------------- Dense


@pytest.mark.parametrize("seed", range(60))
def test_dense_equals_stock_on_random_cases(seed):
    rng = np.random.default_rng(seed)
    n_in, n_out = int(rng.integers(1, 40)), int(rng.integers(1, 12))
    mode = seed % 4      # mixed, excitatory, inhibitory, out of 8-bit range (clipped)
    w = rng.integers(-256, 256, (n_out, n_in))
    w = [w, np.abs(w), -np.abs(w), w * 300][mode]
    w.flat[0] = [-256, 255, -255, 2 ** 20][mode]
    kwargs = dict(weight_exp=int(rng.integers(-8, 9)),
                  num_weight_bits=int(rng.integers(1, 9)))
    if seed % 7 == 0:
        kwargs["sign_mode"] = SignMode.MIXED
    bits = [0, 1, 8, 16, 24, 31][seed % 6]
    inputs = _payloads(rng, (n_in,), max(bits, 3), 5)
    if bits == 0:
        inputs = (rng.random((5, n_in)) < 0.4).astype(np.int32) * inputs
    _same(lambda: Dense(weights=w, num_message_bits=bits, **kwargs),
          FastDenseModel, PyDenseModelBitAcc, inputs)


def test_dense_sums_at_the_int32_wrap_and_delay():
    """Graded sums around 2**31 wrap as numpy's int32 dot does; a_out lags one step."""
    w = np.array([[255, 255], [-256, 0], [1, 1]])
    xs = np.array([[2 ** 23, 2 ** 23], [I32.max, 1], [I32.max, I32.max], [I32.min, -1]],
                  np.int32)
    for e in (-3, 0, 4):
        got = _same(lambda: Dense(weights=w, num_message_bits=24, weight_exp=e),
                    FastDenseModel, PyDenseModelBitAcc, xs)
        assert not got[0].any()                      # the one-step delay
    assert got[2][2] == np.int32(np.int64(I32.max + 1) << 4)   # wrapped, then shifted


def test_dense_int64_input_channel():
    """An int64 source: numpy's dot then sums in int64 (no 32-bit wrap before the shift)."""
    w = np.array([[255, -256, 7]])
    xs = np.array([[2 ** 40, 2 ** 35, 3], [-(2 ** 45), 1, 1]], np.int64)
    _same(lambda: Dense(weights=w, num_message_bits=24, weight_exp=-7),
          FastDenseModel, PyDenseModelBitAcc, xs, channel=np.int64)


def test_dense_falls_back_to_int64_past_the_bound():
    """Past 2**53 the float64 product would round; the model switches to exact int64."""
    rng = np.random.default_rng(5)
    n_in = 40_000
    w = rng.integers(-256, 256, (3, n_in))
    w[0] = 255                       # row 0 sums past 2**53
    x = rng.integers(2 ** 30, I32.max, (2, n_in)).astype(np.int32)
    x[:, 1] = 2 ** 30 + 1            # odd low bits, so float64 sums would round
    m = ExactMatrix(np.clip(w, -256, 255).T)
    assert dense_tier(m, max_abs(x)) == "i64"
    exact = np.clip(w, -256, 255).astype(object) @ x[0].astype(object)
    f64 = (np.clip(w, -256, 255).astype(np.float64) @ x[0].astype(np.float64))
    assert any(int(a) != int(b) for a, b in zip(f64, exact))      # float64 really rounds here
    assert [int(v) for v in m.matmul(x[0][None, None], "i64")[0, 0]] == list(exact)
    _same(lambda: Dense(weights=w, num_message_bits=24, weight_exp=-8),
          FastDenseModel, PyDenseModelBitAcc, x)


# ---------------------------------------------------------------- Conv


def _conv_case(rng, seed):
    groups = [1, 1, 2, 3][seed % 4]
    cg, kg = int(rng.integers(1, 4)), int(rng.integers(1, 4))
    if seed % 5 == 0:
        cg = kg = 1                                   # depthwise (our pooling layers)
    kx, ky = int(rng.integers(1, 4)), int(rng.integers(1, 4))
    stride = tuple(int(v) for v in rng.integers(1, 3, 2))
    padding = tuple(int(v) for v in rng.integers(0, 2, 2))
    dilation = tuple(int(v) for v in rng.integers(1, 3, 2))
    shape = (int(rng.integers(dilation[0] * kx, 9)), int(rng.integers(dilation[1] * ky, 9)),
             groups * cg)
    w = rng.integers(-256, 256, (groups * kg, kx, ky, cg))
    if seed % 3 == 0:
        w = w * 4099                                  # the stock Conv model does not clip
    w.flat[0] = [-256, 255, 2 ** 24][seed % 3]
    return dict(weight=w, input_shape=shape, stride=stride, padding=padding,
                dilation=dilation, groups=groups)


@pytest.mark.parametrize("seed", range(60))
def test_conv_equals_stock_on_random_cases(seed):
    rng = np.random.default_rng(1000 + seed)
    case = _conv_case(rng, seed)
    bits = [0, 1, 8, 16, 24][seed % 5]
    inputs = _payloads(rng, case["input_shape"], max(bits, 3), 4)
    if bits == 0:
        inputs = (rng.random(inputs.shape) < 0.3).astype(np.int32) * inputs
    _same(lambda: Conv(num_message_bits=bits, weight_exp=int(rng.integers(-4, 5)), **case),
          FastConvModel, PyConvModelFixed, inputs)


def test_conv_sums_at_the_24_bit_and_int32_boundaries():
    """1x1 kernel of weight 1 and 2: sums at +-2**23 wrap (24-bit signed clamp), sums past
    int32 become INT32_MIN (numpy's float64 cast), hence 0 after the clamp."""
    edge = [2 ** 23 - 1, 2 ** 23, -(2 ** 23), -(2 ** 23) - 1, 2 ** 24 + 5, I32.max, I32.min,
            2 ** 30, -(2 ** 30) - 1]
    x = np.array(edge, np.int32).reshape(len(edge), 1, 1)
    for wv in (1, 2, -1):
        w = np.full((1, 1, 1, 1), wv)
        got = _same(lambda: Conv(weight=w, input_shape=(len(edge), 1, 1),
                                 num_message_bits=24), FastConvModel, PyConvModelFixed, [x, x])
    assert got[1].ravel().tolist() == [((-v + 2 ** 23) % 2 ** 24) - 2 ** 23 if v != I32.min
                                       else 0 for v in edge]


def test_conv_falls_back_to_integers_past_the_bound():
    """Past 2**53 (int32 weights of a stock Conv are not clipped) the model sums exact
    integers. Here the exact sum is 2**31 - 1 (int32, wraps to -1 in 24 bits) while the
    float64 sums -- any BLAS, and the stock model's scipy convolution -- round to 2**31
    (out of int32: 0 after the clamp). The fast model is exact; stock Lava is not."""
    big = I32.max
    w = np.array([big, -(big - 1)]).reshape(1, 1, 2, 1)           # (K, Kx, Ky, C)
    x = np.full((1, 2, 1), big, np.int32)
    plan = conv_plan((1, 2, 1), w, (1, 1), (0, 0), (1, 1), 1)
    assert plan.matrix.tier(big) == "i64"
    assert int(conv_sums(x, plan)[0, 0, 0]) == big
    assert float(x.astype(np.float64).ravel() @ plan.matrix.f64[0, :, 0]) == 2.0 ** 31
    make = lambda: Conv(weight=w, input_shape=(1, 2, 1), num_message_bits=24)  # noqa: E731
    assert _drive(FastConvModel, make, [x, x])[1].ravel().tolist() == [-1]
    assert _drive(PyConvModelFixed, make, [x, x])[1].ravel().tolist() == [0]


@pytest.mark.parametrize("seed", range(30))
def test_conv_kernel_tiers_equal_scipy(seed):
    """Every tier (float64, int64, Python ints; im2col and the depthwise path) gives scipy's
    convolution sums, as Lava's stock model computes them."""
    from lava.proc.conv import utils
    rng = np.random.default_rng(2000 + seed)
    case = _conv_case(rng, seed)
    w, shape = case["weight"], case["input_shape"]
    x = rng.integers(-1000, 1000, shape).astype(np.int32)
    args = (case["stride"], case["padding"], case["dilation"], case["groups"])
    want = utils.conv_scipy(x, w, w.shape[1:3], *args)
    plan = conv_plan(shape, w, *args)
    assert plan.matrix.tier(1000) == ("f32" if seed % 3 == 1 else "f64")
    for tier in ("f32", "f64", "i64", "object"):
        if tier == "f32" and plan.matrix.tier(1000) != "f32":
            continue                        # float32 is exact only below 2**24
        assert np.array_equal(np.asarray(conv_sums(x, plan, tier), np.float64), want), tier


def test_kernel_object_tier_past_int64():
    """Sums whose bound passes 2**63 are exact in Python integers."""
    m = ExactMatrix(np.full((4, 1), I32.max))
    x = np.full((1, 1, 4), I32.max, np.int64)
    assert m.tier(I32.max) == "object"
    assert int(m.matmul(x, "object")[0, 0, 0]) == 4 * I32.max ** 2


# ---------------------------------------------------------------- a real Lava run


def _lava_graph(seed):
    from lava.proc.io.sink import RingBuffer as Sink
    from lava.proc.io.source import RingBuffer as Source
    rng = np.random.default_rng(seed)
    steps = 6
    data = rng.integers(-(2 ** 20), 2 ** 20, (5, 6, 2, steps)).astype(np.int32)
    data[rng.random(data.shape) < 0.5] = 0
    src = Source(data=data)
    conv = Conv(weight=rng.integers(-256, 256, (3, 3, 3, 2)), input_shape=(5, 6, 2),
                padding=1, stride=(1, 2), num_message_bits=24)
    dense = Dense(weights=rng.integers(-256, 256, (4, 5 * 3 * 3)), num_message_bits=24,
                  weight_exp=-3)
    sinks = [Sink(shape=conv.a_out.shape, buffer=steps), Sink(shape=(4,), buffer=steps)]
    src.s_out.connect(conv.s_in)
    conv.a_out.connect(sinks[0].a_in)
    conv.a_out.flatten().connect(dense.s_in)
    dense.a_out.connect(sinks[1].a_in)
    return src, sinks, steps


def test_real_lava_run_equals_stock_and_leaks_nothing():
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg

    from qblif.lava.session import lava_session
    from lava_harness import child_pids, settled, shm_segments
    before_pids, before_shm = child_pids(), shm_segments()
    out = []
    for models in ({}, fast_models()):
        src, sinks, steps = _lava_graph(3)
        cfg = Loihi2SimCfg(select_tag="fixed_pt", exception_proc_model_map=models)
        with lava_session(src):
            src.run(condition=RunSteps(num_steps=steps), run_cfg=cfg)
            out.append([s.data.get().copy() for s in sinks])
    for a, b in zip(*out):
        assert np.array_equal(a, b)
    assert np.abs(out[0][1]).max() > 0
    assert settled(before_pids, before_shm) == (set(), set())


# ---------------------------------------------------------------- the lean QBLIF model


@pytest.mark.parametrize("seed", range(40))
def test_lean_qblif_equals_reference_and_legacy(seed):
    """The lean fixed_pt QBLIF model equals reference.simulate (counts, u, v every step) and
    the previous model, on inputs that wrap u (|a| up to 2**26), clip v, with per-neuron or
    shared thresholds, K up to 255, the fast decays (du = 4095, dv = 0) and periodic resets."""
    from qblif import QBLIF
    from qblif.core import reference
    from qblif.lava.fastsyn.baseline import PyQBLIFModelFixedLegacy
    from qblif.lava.procs.qblif.models import PyQBLIFModelFixed
    rng = np.random.default_rng(7000 + seed)
    n, steps = 24, 30
    du = int([0, 4095, rng.integers(0, 4096)][seed % 3])
    dv = int([0, 4095, rng.integers(0, 4096), 0][seed % 4])
    vth = (int(rng.integers(1, 2 ** 17)) if seed % 2 else rng.integers(1, 2 ** 17, n))
    if seed % 5 == 0:
        vth = rng.integers(1, 40, n) if seed % 2 == 0 else int(rng.integers(1, 40))
    kw = dict(du=du, dv=dv, vth=vth, max_burst=int([1, 4, 15, 255][seed % 4]),
              bias_mant=rng.integers(-4096, 4096, n) if seed % 3 == 0 else 0,
              bias_exp=int(rng.integers(-7, 8)), reset_mode=["subtract", "zero"][seed % 2],
              reset_interval=[None, 7][seed % 2], reset_offset=seed % 5)
    amp = 2 ** int(rng.integers(8, 27))
    a = rng.integers(-amp, amp, (steps, n)).astype(np.int32)
    want = reference.simulate(a, record=True, **kw)
    for cls in (PyQBLIFModelFixed, PyQBLIFModelFixedLegacy):
        pm = build_model(cls, QBLIF(shape=(n,), **kw), np.int32, ports=("a_in", "s_out"))
        us, vs = [], []
        for x in a:
            drive(pm, [x], ports=("a_in", "s_out"))
            us.append(pm.u.copy())
            vs.append(pm.v.copy())
        got = (np.stack(pm.s_out.sent), np.stack(us), np.stack(vs))
        for g, w in zip(got, want):
            assert np.array_equal(g, w), cls.__name__
    assert np.abs(want[1]).max() > 2 ** 22 or amp < 2 ** 20   # large inputs really reach the wrap


def test_lean_qblif_var_set_of_state_and_threshold():
    """After a Var.set() (on_var_update) the threshold is prepared again; u, v set anywhere in
    int32 decay exactly."""
    from qblif import QBLIF
    from qblif.core import reference
    from qblif.lava.procs.qblif.models import PyQBLIFModelFixed
    kw = dict(du=100, dv=300, vth=20, max_burst=4)
    ports = ("a_in", "s_out")
    pm = build_model(PyQBLIFModelFixed, QBLIF(shape=(4,), **kw), np.int32, ports=ports)
    drive(pm, [np.array([5, 50, 500, 5000], np.int32)], ports=ports)
    pm.u[:] = [I32.max, I32.min, 2 ** 23, -(2 ** 23) + 1]
    pm.v[:] = [I32.min, I32.max, 12345, -7]
    pm.vth[:] = [1, 2, 3, 4]
    pm.on_var_update()
    state = reference.QBLIFState(pm.u.copy(), pm.v.copy())
    x = np.array([1000, -1000, 3, 0], np.int32)
    drive(pm, [x], ports=ports)
    want = reference.step(state, x, du=100, dv=300, vth=np.array([1, 2, 3, 4]), max_burst=4)
    assert np.array_equal(pm.s_out.sent[-1], want)
    assert np.array_equal(pm.u, state.u) and np.array_equal(pm.v, state.v)


# ---------------------------------------------------------------- compiled graphs


@pytest.mark.parametrize("name,samples,uv", [("digits_qblif_mlp", 4, True),
                                             ("fmnist_qblif_conv", 2, True)])
def test_compiled_run_fast_equals_stock_every_layer(name, samples, uv):
    """run(models="fast") equals run(models="stock") (Lava's Dense/Conv, the previous QBLIF
    model) on every layer and step, u and v too (the lean model writes them itself, the
    previous one through a StateRecorder), for the shipped models."""
    import os

    import qblif
    path = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                        "netx_models", name + ".net")
    with qblif.compile(path) as net:
        rng = np.random.default_rng(0)
        hi = 2 ** int(net.ir.graph["input_bits"])
        x = rng.integers(0, hi, (samples,) + net.input_shape)
        fast = net.run(x, 4, record_uv=uv, models="fast")
        stock = net.run(x, 4, record_uv=uv, models="stock")
        assert net.last_run["models"] == "stock"
    assert fast.keys() == stock.keys()
    for k in fast:
        assert np.array_equal(fast[k], stock[k]), k
    assert fast[net.output_index].any()


def test_run_rejects_unknown_models():
    from qblif.lava.runner import run_config
    with pytest.raises(ValueError, match="models='slow'"):
        run_config("slow")


def test_stock_netx_pilotnet_sdnn_with_fast_models_equals_ground_truth():
    """lava-dl's pilotnet_sdnn (Conv and Dense with 16-bit graded payloads, sigma-delta
    neurons) loaded by stock NetX and run with the fast models reproduces lava-dl's own
    ground truth (its test_hdf5.test_pilotnet_sdnn)."""
    import os

    from lava.lib.dl import netx
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.proc.io.sink import RingBuffer as Sink
    from lava.proc.io.source import RingBuffer as Source

    import sysconfig
    from qblif.lava.session import lava_session
    site = sysconfig.get_paths()["purelib"]           # lava-dl ships its tests there
    root = os.path.join(site, "tests", "lava", "lib", "dl", "netx", "gts", "pilotnet_sdnn")
    if not os.path.isdir(root):
        pytest.skip("lava-dl's netx ground truths are not installed")
    net = netx.hdf5.Network(net_config=os.path.join(root, "network.net"))
    src = Source(data=np.load(os.path.join(root, "input.npy")))
    sink = Sink(shape=net.out_layer.shape, buffer=len(net.layers))
    src.s_out.connect(net.in_layer.neuron.a_in)
    net.out_layer.out.connect(sink.a_in)
    cfg = Loihi2SimCfg(select_tag="fixed_pt", exception_proc_model_map=fast_models())
    with lava_session(net):
        net.run(condition=RunSteps(num_steps=len(net.layers)), run_cfg=cfg)
        out = sink.data.get()
    assert np.array_equal(out, np.load(os.path.join(root, "output.npy")))


def test_cli_run_models_flag_reaches_the_run(monkeypatch, capsys):
    """``qblif run --models stock`` runs the baseline models (default: fast)."""
    import os

    import qblif.lava.runner as runtime
    import qblif.cli.main as cli
    pytest.importorskip("sklearn")
    seen = []
    real = runtime.run_config
    monkeypatch.setattr(runtime, "run_config", lambda m="fast": seen.append(m) or real(m))
    path = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                        "netx_models", "digits_qblif_mlp.net")
    for flag in (["--models", "stock"], []):
        rc = cli.main(["run", path, "--dataset", "digits", "--samples", "2"] + flag)
        out = capsys.readouterr().out
        assert rc == 0 and "accuracy:" in out, out
    assert seen == ["stock", "fast"]
