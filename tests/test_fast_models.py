"""The fast synapse models (qblif_lava.fastsyn) equal Lava's own fixed_pt Dense and Conv.

Most cases drive both model classes in this process through stand-in ports that copy Lava's
port semantics (an InPort returns ``zeros(shape, its dtype) + channel data``; an OutPort's
channel stores into an array of the sender's dtype), so hundreds of random cases run in
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

from qblif_lava.fastsyn import FastConvModel, FastDenseModel, fast_models
from qblif_lava.fastsyn.kernels import (F64_EXACT, ExactMatrix, conv_plan, conv_sums,
                                        dense_tier, max_abs)

I32 = np.iinfo(np.int32)


class _In:
    """Stand-in for ``PyInPortVectorDense`` fed by one channel of dtype ``channel``."""

    def __init__(self, shape, dtype, channel):
        self.shape, self.dtype, self.channel, self.queue = shape, dtype, channel, []

    def recv(self):
        data = np.empty(self.shape, self.channel)
        data[:] = self.queue.pop(0)
        return np.zeros(self.shape, self.dtype) + data


class _Out:
    """Stand-in for ``PyOutPortVectorDense`` into a channel of the port's dtype."""

    def __init__(self, shape, dtype):
        self.shape, self.dtype, self.sent = shape, dtype, []

    def send(self, data):
        buf = np.empty(self.shape, self.dtype)
        buf[:] = data
        self.sent.append(buf)


def _build(model_cls, proc, channel):
    """Instantiate ``model_cls`` for ``proc`` as Lava's builder does (Vars cast to the
    model's types), with stand-in ports."""
    pm = model_cls(proc.proc_params)
    for var in proc.vars:
        lt = getattr(model_cls, var.name)
        value = np.empty(var.shape, lt.d_type)
        value[:] = var.init
        setattr(pm, var.name, value)
    pm.s_in = _In(proc.s_in.shape, model_cls.s_in.d_type, channel)
    pm.a_out = _Out(proc.a_out.shape, model_cls.a_out.d_type)
    return pm


def _drive(model_cls, make, inputs, channel=np.int32):
    pm = _build(model_cls, make(), channel)
    for x in inputs:
        pm.s_in.queue.append(x)
        pm.run_spk()
    return np.stack(pm.a_out.sent)


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
    idx, m, osh = conv_plan((1, 2, 1), w, (1, 1), (0, 0), (1, 1), 1)
    assert m.tier(big) == "i64"
    assert int(conv_sums(x, idx, m, osh)[0, 0, 0]) == big
    assert float(x.astype(np.float64).ravel() @ m.f64[0, :, 0]) == 2.0 ** 31
    make = lambda: Conv(weight=w, input_shape=(1, 2, 1), num_message_bits=24)  # noqa: E731
    assert _drive(FastConvModel, make, [x, x])[1].ravel().tolist() == [-1]
    assert _drive(PyConvModelFixed, make, [x, x])[1].ravel().tolist() == [0]


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

    from qblif_lava.lava_session import lava_session
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
