"""Sample lanes: ``run(..., lanes=L)`` runs L samples side by side in one Lava run and
gives exactly ``lanes=1``'s counts on every layer and step (S not a multiple of L
included), in both encodings; features lanes do not cover are refused by name."""
from __future__ import annotations

import numpy as np
import pytest

import qblif
from lava_harness import child_pids, settled, shm_segments
from qblif.ir import layers
from test_compiler_writer import conv_net, dense_net, write_net

DIGITS = "netx_models/digits_qblif_mlp.net"


def _frames(net, rng, samples):
    hi = 2 ** int(net.ir.graph["input_bits"])
    return rng.integers(0, hi, size=(samples,) + tuple(net.input_shape))


def _same_as_one_lane(net, frames, steps, lanes_list, **kw):
    """Run ``frames`` at lanes=1 and at each L of ``lanes_list`` (run arguments ``kw``):
    the same keys, shapes, dtypes and values on every layer and step."""
    one = net.run(frames, steps, **kw)
    assert net.last_run["lava_steps"] == len(frames) * steps + net.ir.graph["depth"]
    for lanes in lanes_list:
        out = net.run(frames, steps, lanes=lanes, **kw)
        batches = -(-len(frames) // lanes)
        assert net.last_run["lava_steps"] == batches * steps + net.ir.graph["depth"]
        assert net.last_run["lanes"] == lanes
        assert set(out) == set(one)
        for i in one:
            assert out[i].shape == one[i].shape and out[i].dtype == one[i].dtype
            np.testing.assert_array_equal(out[i], one[i], err_msg=f"lanes={lanes} layer {i}")
    last = net.output_index
    assert one[last].sum() > 0, "test network is silent: no evidence"
    return one


@pytest.mark.parametrize("encoding", ["graded", "binary"])
def test_digits_mlp_lanes_equal_one_lane(encoding):
    before_pids, before_shm = child_pids(), shm_segments()
    with qblif.compile(DIGITS, encoding=encoding) as net:
        frames = _frames(net, np.random.default_rng(0), 5)     # 5: not a multiple of 2 or 3
        one = _same_as_one_lane(net, frames, 6, (2, 3))
        assert max(o.max() for o in one.values()) > 1, "no burst > 1 exercised"
    assert settled(before_pids, before_shm) == (set(), set())


@pytest.mark.parametrize("encoding", ["graded", "binary"])
def test_conv_pool_net_lanes_equal_one_lane(tmp_path, encoding):
    rng = np.random.default_rng(3)
    specs, shape = conv_net(rng, c_in=2, hw=6, k=3, reset_mode="subtract", pool=True)
    path = write_net(tmp_path / "c.net", specs, shape)
    with qblif.compile(path, encoding=encoding) as net:
        assert {ly.kind for ly in layers(net.ir)} >= {"conv", "pool", "flatten",
                                                                  "dense"}
        _same_as_one_lane(net, _frames(net, rng, 4), 4, (3,))


def test_mixed_cuba_qblif_dense_lanes(tmp_path):
    rng = np.random.default_rng(7)
    specs, shape = dense_net(rng, (10, 8, 6, 4), k=3, reset_mode="subtract", cuba=(1,))
    path = write_net(tmp_path / "m.net", specs, shape)
    with qblif.compile(path) as net:
        assert "LIF" in {net.ir.nodes[i]["layer"].proc for i in (1, 2, 3)}
        frames = _frames(net, rng, 5)
        one = _same_as_one_lane(net, frames, 4, (2,))
        # Lava's stock Dense model multiplies the whole block-diagonal matrix; the fast
        # models' LanedDense one (N_out, N_in) block per lane: both equal lanes=1
        stock = net.run(frames, 4, lanes=2, models="stock")
    for i in one:
        np.testing.assert_array_equal(stock[i], one[i], err_msg=f"stock layer {i}")


def test_lanes_record_subset_and_predict_shape():
    with qblif.compile(DIGITS) as net:
        frames = _frames(net, np.random.default_rng(1), 3)
        last = net.output_index
        one = net.run(frames, 5, layers_to_record=[last])
        two = net.run(frames, 5, layers_to_record=[last], lanes=2)
        pred = net.predict(frames, 5, lanes=2)
    assert set(two) == {last}
    np.testing.assert_array_equal(two[last], one[last])
    np.testing.assert_array_equal(pred, one[last].reshape(3, 5, -1).sum(1).argmax(1))


@pytest.mark.parametrize("kw,word", [
    (dict(reset="none"), "reset"), (dict(engine="exact"), "engine")])
def test_lanes_refuse_uncovered_modes(kw, word):
    with qblif.compile(DIGITS) as net:
        frames = _frames(net, np.random.default_rng(2), 2)
        with pytest.raises(ValueError, match=word):
            net.run(frames, 3, lanes=2, **kw)
        with pytest.raises(ValueError, match="lanes"):
            net.run(frames, 3, lanes=0)
        with pytest.raises(TypeError, match="lanes"):
            net.run(frames, 3, lanes=2.0)


def test_lanes_refuse_per_synapse_delays(tmp_path):
    rng = np.random.default_rng(5)
    specs, shape = dense_net(rng, (6, 5, 4), k=2)
    specs[1]["delay"] = rng.integers(0, 3, (5, 6)).astype(np.float32)   # per input: DelayDense
    path = write_net(tmp_path / "d.net", specs, shape)
    with qblif.compile(path) as net:
        with pytest.raises(ValueError, match=r"layer 1 .*per-synapse delays"):
            net.run(_frames(net, rng, 2), 3, lanes=2)
        with pytest.raises(ValueError, match=r"layer 1 .*per-synapse delays"):
            net.run(rng.integers(0, 2, size=(2, 3) + shape), 3, lanes=2)


def test_per_output_delays_lanes_equal_one_lane(tmp_path):
    """Per-output axonal delays (a DelayLine after the synapse, delays tiled per lane, cleared
    at each sample window with reset='sample'): lanes=1's counts, u and v on every layer and
    step, static frames and a stream, a random net (the delays change its counts) and
    lava-dl's conv block with delays; netx schedules (the line is never cleared) refused."""
    from lavadl_nets import make_net
    rng = np.random.default_rng(27)
    specs, shape = dense_net(rng, (10, 8, 6), k=3)
    plain = write_net(tmp_path / "p.net", specs, shape)
    specs[1]["delay"] = rng.integers(0, 4, (8,)).astype(np.float32)
    specs[2]["delay"] = rng.integers(0, 3, (6,)).astype(np.float32)
    path = write_net(tmp_path / "d.net", specs, shape)
    frames = rng.integers(0, 16, size=(5,) + shape)
    with qblif.compile(plain) as net:
        undelayed = net.run(frames, 6)
    with qblif.compile(path) as net:
        one = _same_as_one_lane(net, frames, 6, (2, 3), record_uv=True)
        assert (one[2] != undelayed[2]).any(), "the delays did not matter"
        assert one[1].sum() > 0
        _same_as_one_lane(net, _stream(net, rng, 4, 3), 6, (3,))
        with pytest.raises(ValueError, match="layer 1's axonal delay line is cleared only"):
            net.run(frames, 6, lanes=2, reset="netx", reset_interval=6,
                    reset_offset=_aligned_offset(net, 6, 6))
    make_net("conv_delay", 0, tmp_path / "c.net")
    with qblif.compile(tmp_path / "c.net") as net:
        spikes = (rng.random((3, 6) + tuple(net.input_shape)) < 0.4).astype(int)
        _same_as_one_lane(net, spikes, 6, (2,))


def test_record_uv_lanes_equal_one_lane(tmp_path):
    """record_uv per lane: u and v de-interleaved like the counts, lanes=1's on every layer
    and step, for a QB-LIF/CUBA dense net (a stream) and the conv net's 3-D layers."""
    rng = np.random.default_rng(22)
    specs, shape = dense_net(rng, (10, 8, 6, 4), k=3, reset_mode="subtract", cuba=(1,))
    path = write_net(tmp_path / "m.net", specs, shape)
    with qblif.compile(path) as net:
        one = _same_as_one_lane(net, _stream(net, rng, 5, 3), 4, (2,), record_uv=True)
        assert {k for k in one if not isinstance(k, int)} == {
            (v, i) for v in "uv" for i in (1, 2, 3)}
        assert all(one[(v, 2)].any() for v in "uv"), "CUBA u, v silent"
    specs, shape = conv_net(rng, c_in=2, hw=6, k=3, reset_mode="subtract", pool=True)
    path = write_net(tmp_path / "c.net", specs, shape)
    with qblif.compile(path) as net:
        one = _same_as_one_lane(net, _frames(net, rng, 3), 3, (2,), record_uv=True)
        assert one[("v", 1)].ndim == 5 and one[("v", 1)].any()


def _aligned_offset(net, steps, interval):
    """The ``reset_offset`` o for which ``reset="netx"`` with ``reset_interval=interval``
    resets the first synaptic layer at the start of each of its sample windows."""
    from qblif.schedule import reset_schedule
    ly = next(ly for ly in layers(net.ir) if ly.synaptic)
    return (ly.reset_offset - reset_schedule(net.ir, ly, steps, "netx", interval, 0)[1]) \
        % interval


@pytest.mark.parametrize("path", ["random", DIGITS])
def test_netx_resets_on_sample_windows_lanes_equal_one_lane(tmp_path, path):
    """reset="netx" whose interval R divides T and whose phase resets every layer at the
    start of its sample windows keeps samples independent: lanes=1's counts on every layer
    and step; R < T adds resets inside the windows (the counts differ from reset='sample')."""
    rng = np.random.default_rng(23)
    if path == "random":
        specs, shape = dense_net(rng, (10, 8, 6), k=3, reset_mode="subtract", cuba=(1,))
        path = write_net(tmp_path / "r.net", specs, shape)
    with qblif.compile(path) as net:
        frames, steps = _frames(net, rng, 5), 6
        sample = net.run(frames, steps)
        for interval, shift in ((6, 0), (3, 1), (2, 2)):
            o = _aligned_offset(net, steps, interval) + shift * interval
            one = _same_as_one_lane(net, frames, steps, (2,), reset="netx",
                                    reset_interval=interval, reset_offset=o)
            assert (interval == steps) == all((one[i] == sample[i]).all() for i in one)
        stream = _stream(net, rng, 3, 4)
        _same_as_one_lane(net, stream, 4, (2,), reset="netx", reset_interval=2,
                          reset_offset=_aligned_offset(net, 4, 2))


def test_timeline_lanes_equal_one_lane(tmp_path):
    """timeline=True with lanes: the lanes=1 run's whole timeline (S*T + depth rows) is
    rebuilt from the lanes: the steps before the first window (lane 0's), each sample's
    window and the steps after the last window (the last sample's lane after its batch).
    Neuron biases make those edge rows non-zero; counts, u and v, reset='sample' and a netx
    schedule on the windows, and the shipped digits MLP."""
    rng = np.random.default_rng(25)
    specs, shape = dense_net(rng, (10, 8, 6, 4), k=3, reset_mode="subtract", cuba=(1,))
    path = write_net(tmp_path / "b.net", specs, shape)
    with qblif.compile(path) as net:
        for ly in layers(net.ir):
            if ly.neuron is not None:
                ly.neuron.bias_mant = rng.integers(0, 300, ly.shape).astype(np.int32) \
                    if ly.proc == "QBLIF" else 40
        frames, steps, depth = _frames(net, rng, 5), 4, net.ir.graph["depth"]
        for kw in (dict(), dict(reset="netx", reset_interval=2,
                                reset_offset=_aligned_offset(net, steps, 2))):
            one = net.run(frames, steps, timeline=True, record_uv=True, **kw)
            assert one[1].shape == (5 * steps + depth, 8)
            assert one[("v", 1)][0].any() and one[("v", 1)][-1].any(), "edge rows are zero"
            assert one[("v", 3)][:2].any()
            for lanes in (2, 3):
                out = net.run(frames, steps, timeline=True, record_uv=True, lanes=lanes, **kw)
                assert set(out) == set(one)
                for k in one:
                    np.testing.assert_array_equal(out[k], one[k], err_msg=f"{lanes} {kw} {k}")
    with qblif.compile(DIGITS) as net:
        frames = _frames(net, rng, 3)
        one = net.run(frames, 4, timeline=True)
        two = net.run(frames, 4, timeline=True, lanes=2)
    assert set(one) == set(two) and one[1].sum() > 0
    for k in one:
        np.testing.assert_array_equal(two[k], one[k], err_msg=f"digits layer {k}")


@pytest.mark.parametrize("feature", ["input_neuron", "input_transform", "input_neuron_conv"])
def test_bias_driven_input_lanes_equal_one_lane(tmp_path, feature):
    """An input layer with a CUBA neuron driven by its bias (lava-dl's ``Input`` block,
    ``BiasNeuron``), with the file's input transform, and before a conv: lanes=1's counts,
    u and v on every layer and step, per-sample resets and a netx schedule on the windows,
    a bias stream and the timeline; a netx phase off the input layer's windows is refused."""
    from lavadl_nets import make_net
    make_net(feature, 0, tmp_path / "n.net")
    rng = np.random.default_rng(26)
    with qblif.compile(tmp_path / "n.net") as net:
        assert layers(net.ir)[0].proc == "BiasNeuron"
        shape = (5,) + tuple(net.input_shape)
        frames = rng.random(shape) if feature == "input_transform" else \
            2 * rng.integers(0, 80, shape)
        kw = dict(input_transform=feature == "input_transform", record_uv=True)
        one = _same_as_one_lane(net, frames, 6, (2,), **kw)
        assert one[("v", 0)].any()
        o = _aligned_offset(net, 6, 3)
        _same_as_one_lane(net, frames, 6, (2,), reset="netx", reset_interval=3,
                          reset_offset=o, **kw)
        with pytest.raises(ValueError, match="layer 0 is reset at steps t % 3"):
            net.run(frames, 6, lanes=2, reset="netx", reset_interval=3, reset_offset=o + 1,
                    **kw)
        stream = np.repeat(frames[:, None], 4, 1)
        stream[:, 1::2] //= 3
        tl = net.run(stream, 6, timeline=True, **kw)
        tl2 = net.run(stream, 6, timeline=True, lanes=3, **kw)
        assert set(tl) == set(tl2)
        for k in tl:
            np.testing.assert_array_equal(tl2[k], tl[k], err_msg=f"stream timeline {k}")


@pytest.mark.parametrize("feature", ["recurrent", "recurrent_delay"])
def test_recurrent_lanes_equal_one_lane(tmp_path, monkeypatch, feature):
    """lava-dl's cuba.Recurrent (``dense_rec``; with an output delay): the recurrent weight
    laned like a dense synapse (LanedDense; the stock models' block-diagonal Dense), the
    feedback gate tiled per lane: lanes=1's counts, u and v on every layer and step, both
    encodings, a spike stream. A netx schedule (no gate: the previous sample's last spikes
    feed the next sample) is refused; run anyway, lanes give other counts."""
    from qblif.api import CompiledNetwork
    from lavadl_nets import make_net
    make_net(feature, 0, tmp_path / "r.net")
    rng = np.random.default_rng(28)
    for encoding in ("graded", "binary"):
        with qblif.compile(tmp_path / "r.net", encoding=encoding) as net:
            assert any(ly.synapse is not None and ly.synapse.weight_rec is not None
                       for ly in layers(net.ir))
            spikes = (rng.random((5, 6) + tuple(net.input_shape)) < 0.4).astype(int)
            one = _same_as_one_lane(net, spikes, 6, (2,), record_uv=True)
            stock = net.run(spikes, 6, lanes=2, record_uv=True, models="stock")
            for k in one:
                np.testing.assert_array_equal(stock[k], one[k], err_msg=f"stock {k}")
    with qblif.compile(tmp_path / "r.net") as net:
        netx = dict(reset="netx", reset_interval=6, reset_offset=_aligned_offset(net, 6, 6))
        with pytest.raises(ValueError, match="layer 1's .* side by side cannot reproduce"):
            net.run(spikes, 6, lanes=2, **netx)
        monkeypatch.setattr("qblif.api.refuse_lanes", lambda *a, **k: None)
        one, two = net.run(spikes, 6, **netx), net.run(spikes, 6, lanes=2, **netx)
        assert any((one[i] != two[i]).any() for i in one)


def test_graded_lif_lanes_equal_one_lane(tmp_path):
    """lava-dl's graded-spike CUBA layer (``GradedLIF``, elementwise; vth and bias tiled per
    lane): lanes=1's counts, u and v on every layer and step."""
    from lavadl_nets import make_input, make_net
    info = make_net("graded", 0, tmp_path / "g.net")
    with qblif.compile(tmp_path / "g.net") as net:
        assert "GradedLIF" in {ly.proc for ly in layers(net.ir)}
        spikes = np.stack([make_input(info, seed, 6) for seed in range(5)])
        one = _same_as_one_lane(net, spikes, 6, (2, 3), record_uv=True)
        assert one[1].max() > 1, "no graded spike"


@pytest.mark.parametrize("feature,word", [("alif", "ATRLIF has no state reset"),
                                          ("rf", "RF has no state reset"),
                                          ("sdnn", "SDNN layers are never reset")])
def test_lanes_refuse_layers_without_reset(tmp_path, feature, word):
    """ALIF, RF (no reset: run with reset='none' only) and SDNN (never reset) chain each
    sample to the previous one: refused with the reason, before Lava starts."""
    from lavadl_nets import make_input, make_net
    info = make_net(feature, 0, tmp_path / "n.net")
    with qblif.compile(tmp_path / "n.net") as net:
        x = np.stack([make_input(info, seed, 4) for seed in range(2)])
        for reset in ("sample", "none"):
            with pytest.raises(ValueError, match="side by side cannot reproduce"):
                net.run(x, 4, lanes=2, reset=reset)
        with pytest.raises(ValueError, match=word):
            net.run(x, 4, lanes=2)
        assert net.auto_lanes(x) == 1


def test_lanes_refuse_resets_that_chain_samples(monkeypatch):
    """reset='none' (never reset) and netx schedules off the sample windows (phase, or an
    interval not dividing T) chain each sample to the previous one on one timeline: refused
    with the reason; run anyway (the refusal patched out), lanes would give other counts."""
    from qblif.api import CompiledNetwork
    with qblif.compile(DIGITS) as net:
        frames, steps = _frames(net, np.random.default_rng(24), 4), 6
        o = _aligned_offset(net, steps, steps)
        cases = [(dict(reset="none"), "never reset"),
                 (dict(reset="netx", reset_interval=steps, reset_offset=o + 1), "t % 6 =="),
                 (dict(reset="netx", reset_interval=4, reset_offset=o), "t % 4 ==")]
        for kw, word in cases:
            with pytest.raises(ValueError, match=f"lanes > 1 does not support .*{word}.*"
                                                 "side by side cannot reproduce"):
                net.run(frames, steps, lanes=2, **kw)
            assert net.auto_lanes(frames, steps_per_sample=steps, **kw) == 1
        monkeypatch.setattr("qblif.api.refuse_lanes", lambda *a, **k: None)
        for kw, _ in cases:
            one, two = net.run(frames, steps, **kw), net.run(frames, steps, lanes=2, **kw)
            assert any((one[i] != two[i]).any() for i in one), kw


def _stream(net, rng, samples, t_in):
    """A random input stream ``(samples, t_in, *input_shape)`` over the whole input range."""
    hi = 2 ** int(net.ir.graph["input_bits"])
    return rng.integers(0, hi, size=(samples, t_in) + tuple(net.input_shape))


@pytest.mark.parametrize("encoding", ["graded", "binary"])
def test_digits_mlp_stream_lanes_equal_one_lane(encoding):
    """Input streams per lane: lane l of batch b carries sample ``b*L + l``'s stream, one
    value per step (zeros past T_in): lanes=1's counts on every layer and step."""
    before_pids, before_shm = child_pids(), shm_segments()
    with qblif.compile(DIGITS, encoding=encoding) as net:
        stream = _stream(net, np.random.default_rng(20), 5, 4)     # T_in 4 < T 6
        one = _same_as_one_lane(net, stream, 6, (2, 3), record_uv=True)
        assert ("v", net.output_index) in one
        static = net.run(stream[:, 0], 6)
        assert any((one[i] != static[i]).any() for i in one), "the stream did not matter"
    assert settled(before_pids, before_shm) == (set(), set())


def test_conv_pool_net_stream_lanes_equal_one_lane(tmp_path):
    rng = np.random.default_rng(21)
    specs, shape = conv_net(rng, c_in=2, hw=6, k=3, reset_mode="subtract", pool=True)
    path = write_net(tmp_path / "c.net", specs, shape)
    with qblif.compile(path) as net:
        _same_as_one_lane(net, _stream(net, rng, 4, 4), 4, (3,), stream=True)


def test_cli_run_lanes(tmp_path):
    from qblif.cli.main import main
    rng = np.random.default_rng(4)
    with qblif.compile(DIGITS) as net:
        frames = _frames(net, rng, 3)
    np.save(tmp_path / "x.npy", frames)
    import contextlib
    import io
    outs = []
    for lanes in ("1", "2"):
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            assert main(["run", DIGITS, "--input", str(tmp_path / "x.npy"), "--steps", "4",
                         "--lanes", lanes]) == 0
        outs.append([ln for ln in buf.getvalue().splitlines() if ln.startswith("sample ")])
    assert len(outs[0]) == 3 and outs[0] == outs[1]
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        rc = main(["run", DIGITS, "--input", str(tmp_path / "x.npy"), "--steps", "4",
                   "--lanes", "2", "--reset", "none"])
    assert rc != 0 and "lanes" in err.getvalue() and "Traceback" not in err.getvalue()


FMNIST = "netx_models/fmnist_qblif_conv.net"


def test_fmnist_conv_lanes_past_127_groups():
    """2 lanes give the second pooling layer 128 groups: Lava's Conv models keep ``groups``
    in an int8 Var (it wraps to -128), so the fast model reads the process parameter."""
    with qblif.compile(FMNIST) as net:
        pools = [ly for ly in layers(net.ir) if ly.kind == "pool"]
        assert max(ly.synapse.groups for ly in pools) * 2 > 127
        _same_as_one_lane(net, _frames(net, np.random.default_rng(6), 3), 3, (2,))


def test_lanes_refuse_stock_conv_groups_and_huge_dense():
    """Lava's own models (models='stock') run a laned dense layer as a block-diagonal Dense:
    refused past MAX_LANED_DENSE entries (the fast models' LanedDense has no such limit)."""
    with qblif.compile(FMNIST) as net:
        frames = _frames(net, np.random.default_rng(8), 2)
        with pytest.raises(ValueError, match=r"layer 3 \(pool\).*groups.*models='fast'"):
            net.run(frames, 2, lanes=2, models="stock")
    with qblif.compile(DIGITS) as net:          # 64 -> 128: 2**25 / 8192 = 64**2
        frames = _frames(net, np.random.default_rng(8), 2)
        with pytest.raises(ValueError, match=r"layer 0 \(dense\).*models='fast' or lanes <= 64"):
            net.run(frames, 2, lanes=65, models="stock")


# ------------------------------------------------------------ LanedDense


def _laned_vs_dense(w, kwargs, bits, inputs, channel=np.int32):
    """Drive one LanedDense model on ``inputs`` ``(steps, L, n_in)`` and one Lava Dense
    (PyDenseModelBitAcc) per lane; every lane's a_out must be equal, dtype included."""
    from lava.proc.dense.models import PyDenseModelBitAcc
    from lava.proc.dense.process import Dense

    from qblif.lava.procs.laned_dense import LanedDense
    from qblif.lava.procs.laned_dense.models import PyLanedDenseModel
    from qblif.lava.fastsyn.standin import build_model, drive
    steps, n_lanes, _ = inputs.shape
    proc = LanedDense(weights=w, lanes=n_lanes, num_message_bits=bits, **kwargs)
    assert proc.weights.shape == w.shape and proc.a_out.shape == (n_lanes * w.shape[0],)
    got = drive(build_model(PyLanedDenseModel, proc, channel), inputs.reshape(steps, -1))
    got = got.reshape(steps, n_lanes, -1)
    for lane in range(n_lanes):
        dense = Dense(weights=w, num_message_bits=bits, **kwargs)
        want = drive(build_model(PyDenseModelBitAcc, dense, channel), inputs[:, lane])
        assert got.dtype == want.dtype
        np.testing.assert_array_equal(got[:, lane], want, err_msg=f"lane {lane}")
    return got


@pytest.mark.parametrize("seed", range(30))
def test_laned_dense_equals_lava_dense_per_lane(seed):
    """Extreme and out-of-range weights, every sign mode, num_weight_bits 1..8, exponents
    -8..8, binary and graded payloads up to 31 bits, 1 to 40 lanes."""
    from lava.utils.weightutils import SignMode
    from test_fast_models import _payloads
    rng = np.random.default_rng(100 + seed)
    n_in, n_out = int(rng.integers(1, 30)), int(rng.integers(1, 12))
    n_lanes = [1, 2, 3, 7, 17, 40][seed % 6]
    mode = seed % 4      # mixed, excitatory, inhibitory, out of 8-bit range (clipped)
    w = rng.integers(-256, 256, (n_out, n_in))
    w = [w, np.abs(w), -np.abs(w), w * 300][mode]
    w.flat[0] = [-256, 255, -255, 2 ** 20][mode]
    kwargs = dict(weight_exp=int(rng.integers(-8, 9)), num_weight_bits=int(rng.integers(1, 9)))
    if seed % 7 == 0:
        kwargs["sign_mode"] = SignMode.MIXED
    bits = [0, 1, 8, 16, 24, 31][(seed // 2) % 6]
    inputs = _payloads(rng, (n_lanes, n_in), max(bits, 3), 4)
    if bits == 0:
        inputs = (rng.random(inputs.shape) < 0.4).astype(np.int32) * inputs
    got = _laned_vs_dense(w, kwargs, bits, inputs)
    assert not got[0].any()                                   # the one-step delay


def test_laned_dense_int32_wrap_int64_channel_and_int64_tier():
    """Sums past int32 wrap as Lava's Dense (numpy's int32 dot), an int64 source sums in
    int64, and past 2**53 the product runs in exact int64, per lane."""
    w = np.array([[255, 255], [-256, 0], [1, 1]])
    xs = np.array([[[2 ** 23, 2 ** 23], [np.iinfo(np.int32).max, 1]],
                   [[np.iinfo(np.int32).max] * 2, [np.iinfo(np.int32).min, -1]]], np.int32)
    for e in (-3, 0, 4):
        _laned_vs_dense(w, dict(weight_exp=e), 24, xs)
    w64 = np.array([[255, -256, 7]])
    x64 = np.array([[[2 ** 40, 2 ** 35, 3], [-(2 ** 45), 1, 1]]] * 2, np.int64)
    _laned_vs_dense(w64, dict(weight_exp=-7), 24, x64, channel=np.int64)
    rng = np.random.default_rng(5)
    wide = rng.integers(-256, 256, (2, 40_000))
    wide[0] = 255                                            # row 0 sums past 2**53
    x = rng.integers(2 ** 30, np.iinfo(np.int32).max, (1, 2, 40_000)).astype(np.int32)
    x[..., 1] = 2 ** 30 + 1
    _laned_vs_dense(wide, dict(weight_exp=-8), 24, x)


def test_laned_dense_refuses_bad_arguments():
    from qblif.lava.procs.laned_dense import LanedDense
    with pytest.raises(ValueError, match="2-D"):
        LanedDense(weights=np.ones(3), lanes=2)
    with pytest.raises(ValueError, match="lanes"):
        LanedDense(weights=np.ones((2, 3)), lanes=0)


def test_emit_laned_dense_holds_one_weight_block(tmp_path):
    """With the fast models a laned dense layer is a LanedDense holding ``(N_out, N_in)``;
    with the stock models, Lava's Dense with the block-diagonal weight."""
    from lava.proc.dense.process import Dense

    from qblif.lava.emit import emit
    from qblif.lava.procs.laned_dense import LanedDense
    from qblif.lava.runner import to_sample_lanes as _to_sample_lanes
    with qblif.compile(DIGITS) as net:
        frames = _frames(net, np.random.default_rng(9), 3)
        lava = _to_sample_lanes(frames.transpose(0, *range(frames.ndim - 1, 0, -1)), 3)
        dense = [ly for ly in layers(net.ir) if ly.kind == "dense"]
        for stock, cls in ((False, LanedDense), (True, Dense)):
            em = emit(net.ir, lava, 2, str(tmp_path), set(), sample_lanes=3,
                      stock_models=stock)
            syn = [p for p in em.processes if type(p) is cls]
            assert len(syn) == len(dense)
            for p, ly in zip(syn, dense):
                n_out, n_in = ly.synapse.weight.shape
                assert p.s_in.shape == (3 * n_in,) and p.a_out.shape == (3 * n_out,)
                assert p.weights.shape == ((n_out, n_in) if not stock
                                           else (3 * n_out, 3 * n_in))


def test_lanes_past_the_old_dense_limit(tmp_path):
    """A small dense net at 33 lanes: its 600 -> 64 layer as a block-diagonal Dense would
    have 33**2 * 38,400 > 2**25 entries (the old limit: 29 lanes); LanedDense gives lanes=1's
    counts on every layer and step (35 samples: not a multiple of 33), and nothing leaks."""
    from qblif.lava.emit import MAX_LANED_DENSE
    rng = np.random.default_rng(11)
    specs, shape = dense_net(rng, (600, 64, 10), k=3, reset_mode="subtract")
    path = write_net(tmp_path / "w.net", specs, shape)
    before_pids, before_shm = child_pids(), shm_segments()
    with qblif.compile(path) as net:
        assert 600 * 64 * 33 ** 2 > MAX_LANED_DENSE
        _same_as_one_lane(net, _frames(net, rng, 35), 3, (33,))
    assert settled(before_pids, before_shm) == (set(), set())


def test_fmnist_conv_lanes_16():
    """fmnist_qblif_conv at 16 lanes (past the old limit of 9 for its 3136 -> 128 layer)
    equals lanes=1 on every layer and step."""
    with qblif.compile(FMNIST) as net:
        _same_as_one_lane(net, _frames(net, np.random.default_rng(12), 17), 2, (16,))


def test_auto_lanes_where_lanes_cover_the_run():
    from qblif.api import AUTO_LANES
    with qblif.compile(DIGITS) as net:
        frames = _frames(net, np.random.default_rng(13), 40)
        assert AUTO_LANES == 32
        assert net.auto_lanes(frames) == 20                      # 2 batches of 20, not 32 + 8
        assert net.auto_lanes(frames[:32]) == 32 and net.auto_lanes(frames[:33]) == 17
        assert net.auto_lanes(frames[:5]) == 5 and net.auto_lanes(frames[:1]) == 1
        assert net.auto_lanes(np.zeros((10_000,) + tuple(net.input_shape), int)) == 32
        for kw in (dict(engine="exact"), dict(reset="none")):
            assert net.auto_lanes(frames, **kw) == 1, kw
        assert net.auto_lanes(frames, record_uv=True) == 20
        assert net.auto_lanes(frames, timeline=True) == 20
        o = _aligned_offset(net, 4, 2)
        netx = dict(reset="netx", reset_interval=2, reset_offset=o)
        assert net.auto_lanes(frames, steps_per_sample=4, **netx) == 20
        assert net.auto_lanes(frames, **netx) == 1                     # T unknown
        assert net.auto_lanes(frames, steps_per_sample=0, **netx) == 1
        assert net.auto_lanes(frames[:, None]) == 20                   # a stream
    with qblif.compile(FMNIST) as net:                              # stock: 127 groups
        frames = _frames(net, np.random.default_rng(13), 40)
        assert net.auto_lanes(frames, models="stock") == 1
        assert net.auto_lanes(frames) == 20


def test_cli_run_default_lanes_same_counts_and_noted(tmp_path):
    """``qblif run`` without --lanes runs the samples side by side where lanes cover the run
    (a note on stderr) and prints what --lanes 1 prints; where they do not, one at a time."""
    import contextlib
    import io

    from qblif.cli.main import main
    with qblif.compile(DIGITS) as net:
        np.save(tmp_path / "x.npy", _frames(net, np.random.default_rng(14), 3))

    def run(*extra):
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            assert main(["run", DIGITS, "--input", str(tmp_path / "x.npy"), "--steps", "4",
                         *extra]) == 0
        return [ln for ln in out.getvalue().splitlines() if ln.startswith("sample ")], \
            err.getvalue()
    auto, note = run()
    one, quiet = run("--lanes", "1")
    assert len(auto) == 3 and auto == one
    assert "ran 3 samples side by side" in note and "side by side" not in quiet
    _, none_note = run("--reset", "none")
    assert "side by side" not in none_note
    with qblif.compile(DIGITS) as net:      # a stream, a netx schedule on the windows
        np.save(tmp_path / "x.npy", _stream(net, np.random.default_rng(14), 3, 2))
        o = str(_aligned_offset(net, 4, 2))
    netx = ("--reset", "netx", "--reset-interval", "2", "--reset-offset", o)
    auto, note = run(*netx)
    one, quiet = run(*netx, "--lanes", "1")
    assert len(auto) == 3 and auto == one
    assert "ran 3 samples side by side" in note and "side by side" not in quiet


def test_lava_workers_fork_with_one_blas_thread_and_the_caller_keeps_its_own():
    """CompiledNetwork.run forks Lava's workers inside ``_one_blas_thread`` (BLAS threads
    would only spin against the other worker processes); the caller's setting is restored."""
    from threadpoolctl import threadpool_info

    from qblif.lava.runner import one_blas_thread as _one_blas_thread

    def blas_threads():
        return [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]
    before = blas_threads()
    assert before, "numpy has no BLAS thread pool to limit"
    with _one_blas_thread():
        assert set(blas_threads()) == {1}
    assert blas_threads() == before
    with qblif.compile(DIGITS) as net:
        net.run(_frames(net, np.random.default_rng(15), 2), 2, lanes=2)
    assert blas_threads() == before
