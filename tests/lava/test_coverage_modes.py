"""Time-varying input, reset modes, input neurons driven by their bias, neuron-less dense
readouts and axonal delays: the compiled Lava graph against stock NetX (where stock runs
the feature) or against the numpy oracle (where it cannot), every layer and step."""
from __future__ import annotations

import pathlib
import sysconfig

import numpy as np
import pytest

import qblif
from qblif.core.errors import CompileError
from qblif.exact.oracle import forward, simulate
from test_compiler_writer import dense_net, even_weights, qblif_neuron, write_net

NETX = pathlib.Path(sysconfig.get_paths()["purelib"]) / "tests/lava/lib/dl/netx"
lavadl = pytest.mark.skipif(not (NETX / "tiny.net").exists(),
                            reason="lava-dl's test networks are not installed")


def stock_timeline(path, steps, bias=None, data=None, uv_layers=(), **kw):
    """Run stock ``netx.hdf5.Network(path, **kw)`` for ``steps`` steps: the input layer's
    bias (Lava order) or a RingBuffer of ``data`` into ``net.inp``; returns each block's
    spikes ``{block: (steps, *Lava shape)}`` and ``("v", block)`` via Monitors."""
    from lava.lib.dl import netx
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.proc.io.sink import RingBuffer as Sink
    from lava.proc.io.source import RingBuffer as Source
    from lava.proc.monitor.process import Monitor

    net = netx.hdf5.Network(net_config=str(path), **kw)
    sinks = []
    for blk in net.layers:
        snk = Sink(shape=blk.out.shape, buffer=steps)
        blk.out.connect(snk.a_in)
        sinks.append(snk)
    mons = {}
    for b in uv_layers:
        mons[b] = Monitor()
        mons[b].probe(net.layers[b].neuron.v, steps)
    if bias is not None:
        net.in_layer.neuron.bias_mant.init = bias
    if data is not None:
        src = Source(data=data)
        src.s_out.connect(net.inp)
    try:
        net.run(condition=RunSteps(num_steps=steps), run_cfg=Loihi2SimCfg(select_tag="fixed_pt"))
        out = {b: np.moveaxis(s.data.get(), -1, 0) for b, s in enumerate(sinks)}
        for b, m in mons.items():
            out[("v", b)] = np.asarray(m.get_data()[net.layers[b].neuron.name]["v"])
    finally:
        net.stop()
    return out


def to_lava(x, shape):
    x = np.asarray(x).reshape((x.shape[0],) + tuple(shape))
    return x.transpose((0,) + tuple(range(len(shape), 0, -1)))


@lavadl
@pytest.mark.parametrize("interval,offset", [(5, 2), (7, 0)])
def test_bias_driven_input_and_netx_reset_equal_stock(interval, offset):
    """tiny.net (LOIHI input neuron + 2 conv): the bias drives the input neuron; stock's
    reset_interval/reset_offset schedule; every layer's spikes on every step."""
    bias = np.load(NETX / "gts/tinynet/input_bias.npy").astype(int)       # Lava order
    steps = 14
    ref = stock_timeline(NETX / "tiny.net", steps, bias=bias, reset_interval=interval,
                         reset_offset=offset)
    with qblif.compile(NETX / "tiny.net") as net:
        tl = net.run(bias.transpose(2, 1, 0)[None], steps, timeline=True, reset="netx",
                     reset_interval=interval, reset_offset=offset)
        oracle = simulate(net.ir, bias.transpose(2, 1, 0)[None], steps, reset="netx",
                          reset_interval=interval, reset_offset=offset)
        for i in (0, 1, 2):
            ours = to_lava(tl[i][:steps], net.ir.nodes[i]["layer"].shape)
            np.testing.assert_array_equal(ours, ref[i], err_msg=f"layer {i}")
            np.testing.assert_array_equal(tl[i], oracle[i])
        assert ref[1].sum() > 0 and ref[2].sum() > 0


@lavadl
def test_dense_without_neuron_is_stock_integrator():
    """mnist.net's last dense layer has no neuron: stock's non-leaky integrator; its v (and
    the other layers' spikes) equal stock NetX's, continuous mode (stock: no reset)."""
    steps = 10
    bias = np.random.default_rng(0).integers(0, 120, size=784)
    ref = stock_timeline(NETX / "mnist.net", steps, bias=bias, uv_layers=(3,))
    with qblif.compile(NETX / "mnist.net") as net:
        last = net.ir.nodes[3]["layer"]
        assert last.neuron.raw.get("implicit") and last.proc == "LIF"
        tl = net.run(bias[None], steps, record_uv=True, reset="none", timeline=True)
        for i in (0, 1, 2, 3):
            np.testing.assert_array_equal(tl[i][:steps], ref[i], err_msg=f"layer {i}")
        np.testing.assert_array_equal(tl[("v", 3)][:steps], ref[("v", 3)])
        assert np.any(ref[("v", 3)] != 0) and ref[3].sum() == 0
        oracle = simulate(net.ir, bias[None], steps, record_uv=True, reset="none")
        for k in tl:
            np.testing.assert_array_equal(tl[k], oracle[k], err_msg=str(k))


def _stream_net(tmp_path, rng, k=3, delays=None, conv=False):
    if conv:
        c, hw = 2, 5
        specs = [{"type": "input", "shape": np.array([c, hw, hw])},
                 {"type": "conv", "shape": np.array([3, hw, hw]), "kernelSize": np.array([3, 3]),
                  "stride": np.array([1, 1]), "padding": np.array([1, 1]),
                  "dilation": np.array([1, 1]), "groups": 1,
                  "weight": even_weights(rng, (3, c, 3, 3), 60),
                  "neuron": qblif_neuron(rng, 3, k, "subtract", True, 120)},
                 {"type": "flatten", "shape": np.array([3 * hw * hw])},
                 {"type": "dense", "shape": np.array([4]),
                  "weight": even_weights(rng, (4, 3 * hw * hw), 40),
                  "neuron": qblif_neuron(rng, 4, k, "zero", False, 150)}]
        shape = (c, hw, hw)
        if delays is not None:
            specs[1]["delay"] = delays
    else:
        specs, shape = dense_net(rng, sizes=(6, 5, 4), k=k)
        if delays is not None:
            specs[1]["delay"] = delays
    return write_net(tmp_path / "s.net", specs, input_shape=shape), shape


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("enc", ["graded", "binary"])
def test_streams_and_continuous_mode_equal_the_oracle(tmp_path, seed, enc):
    rng = np.random.default_rng(seed)
    path, shape = _stream_net(tmp_path, rng)
    stream = rng.integers(0, 16, size=(2, 4) + shape)
    with qblif.compile(path, encoding=enc) as net:
        for reset in ("sample", "none"):
            out = net.run(stream, 6, record_uv=True, reset=reset)
            ref = forward(net.ir, stream, 6, record_uv=True, stream=True, reset=reset)
            assert set(out) == set(ref)
            for key in ref:
                np.testing.assert_array_equal(out[key], ref[key], err_msg=f"{reset} {key}")
        cont = forward(net.ir, stream, 6, stream=True, reset="none")
        per = forward(net.ir, stream, 6, stream=True, reset="sample")
        assert any(np.any(cont[i][1] != per[i][1]) for i in (1, 2)), "reset has no effect"


@pytest.mark.parametrize("seed", [0, 1])
def test_axonal_delays_on_dense_and_conv_equal_the_oracle(tmp_path, seed):
    """Dense: per output neuron (lava-dl's axonal delay) and per input (Lava DelayDense);
    conv: per output channel (stock NetX drops these; we honour them)."""
    rng = np.random.default_rng(seed)
    for conv, delays in ((False, rng.integers(0, 4, size=5)), (False, rng.integers(0, 3, size=6)),
                         (True, np.array([0, 2, 5]))):
        path, shape = _stream_net(tmp_path, rng, delays=delays.astype(np.float32), conv=conv)
        stream = rng.integers(0, 16, size=(1, 5) + shape)
        with qblif.compile(path) as net:
            assert net.ir.nodes[1]["layer"].delay is not None
            out = net.run(stream, 12, reset="none")
            ref = forward(net.ir, stream, 12, stream=True, reset="none")
            nodelay = forward(net.ir, stream, 12, stream=True, reset="none")
            for key in ref:
                np.testing.assert_array_equal(out[key], ref[key], err_msg=f"{conv} {key}")
            assert any(ref[i].sum() for i in ref), "silent network"
        net.ir.nodes[1]["layer"].delay = None
        nodelay = forward(net.ir, stream, 12, stream=True, reset="none")
        assert any(np.any(nodelay[i] != ref[i]) for i in ref), "delays have no effect"


def test_input_transform_and_bias_input_checks(tmp_path):
    rng = np.random.default_rng(4)
    specs, shape = dense_net(rng, sizes=(6, 5))
    specs[0]["neuron"] = {"type": "CUBA", "vThMant": 40, "iDecay": 4096, "vDecay": 1024,
                          "refDelay": 1}
    specs[0]["weight"], specs[0]["bias"] = np.float32(40), np.float32(-3)
    path = write_net(tmp_path / "b.net", specs, input_shape=shape)
    x = rng.uniform(-1, 1, size=(2,) + shape)
    with qblif.compile(path) as net:
        assert net.ir.nodes[0]["layer"].proc == "BiasNeuron"
        a = net.run(x, 5, input_transform=True, record_uv=True)
        b = net.run(np.rint(40 * x - 3).astype(int), 5, record_uv=True)
        ref = forward(net.ir, np.rint(40 * x - 3).astype(int), 5, record_uv=True)
        for k in ref:
            np.testing.assert_array_equal(a[k], b[k])
            np.testing.assert_array_equal(a[k], ref[k])
        assert a[0].sum() > 0
        with pytest.raises(ValueError, match="integers"):
            net.run(x, 5)
        with pytest.raises(ValueError, match="bias mantissas"):
            net.run(np.full((1,) + shape, 2 ** 25), 5)


def test_cli_run_input_npy(tmp_path, capsys):
    from qblif.cli.main import main
    rng = np.random.default_rng(5)
    path, shape = _stream_net(tmp_path, rng)
    stream = rng.integers(0, 16, size=(2, 3) + shape)
    np.save(tmp_path / "x.npy", stream)
    assert main(["run", str(path), "--input", str(tmp_path / "x.npy"), "--reset", "none"]) == 0
    got = capsys.readouterr().out
    ref = forward(qblif.compile(path).ir, stream, 3, stream=True, reset="none")
    assert f"sample 1: layer 2 counts {ref[2][1].sum(axis=0).tolist()}" in got
    bad = tmp_path / "bad.net"
    bad.write_bytes(b"not hdf5")
    assert main(["run", str(bad), "--input", str(tmp_path / "x.npy")]) == 2
    assert "error" in capsys.readouterr().err


def _recurrent_file(tmp_path, seed):
    """Two lava-dl ``cuba.Recurrent`` blocks (dense_rec), exported by lava-dl."""
    torch = pytest.importorskip("torch")
    import h5py
    from lava.lib.dl import slayer
    torch.manual_seed(seed)
    p = {"threshold": 0.5, "current_decay": 0.25, "voltage_decay": 0.1, "requires_grad": False}
    blocks = [slayer.block.cuba.Recurrent(p, 6, 5, weight_scale=2, pre_hook_fx=None),
              slayer.block.cuba.Recurrent(p, 5, 4, weight_scale=2, pre_hook_fx=None)]
    x = torch.rand(1, 6, 3)
    for b in blocks:
        x = b(x)
    path = tmp_path / f"rec{seed}.net"
    with h5py.File(path, "w") as f:
        for i, b in enumerate(blocks):
            b.export_hdf5(f.create_group(f"layer/{i}"))
    return path


@pytest.mark.parametrize("seed", [0, 1])
def test_dense_rec_equals_stock_netx(tmp_path, seed):
    """lava-dl's cuba.Recurrent (``dense_rec``): a spike stream, every layer and step equal
    to stock NetX's RecurrentDense (both continuous) and to the oracle."""
    path = _recurrent_file(tmp_path, seed)
    steps = 16
    spikes = (np.random.default_rng(seed).random((steps, 6)) < 0.5).astype(int)
    ref = stock_timeline(path, steps, data=spikes.T)
    with qblif.compile(path, input_bits=1) as net:
        assert (0, 0) in net.ir.edges and net.ir.edges[0, 0]["recurrent"]
        tl = net.run(spikes[None], steps, reset="none", timeline=True)
        oracle = simulate(net.ir, spikes[None], steps, stream=True, reset="none")
        for i in (0, 1):
            np.testing.assert_array_equal(tl[i][:steps], ref[i], err_msg=f"layer {i}")
            np.testing.assert_array_equal(tl[i], oracle[i])
        assert ref[0].sum() > 0 and ref[1].sum() > 0
        net.ir.nodes[0]["layer"].weight_rec = None        # the recurrence matters
        assert np.any(simulate(net.ir, spikes[None], steps, stream=True, reset="none")[0]
                      != oracle[0])


def alif_neuron(rng, vth=(60, 120)) -> dict:
    """A random ALIF neuron record (Lava ATRLIF's parameters), ``vThMant`` drawn in ``vth``."""
    return {"type": "ALIF", "vThMant": int(rng.integers(*vth)),
            "iDecay": int(rng.integers(200, 2000)), "vDecay": int(rng.integers(100, 1000)),
            "thDecay": int(rng.integers(100, 800)), "refDecay": int(rng.integers(100, 800)),
            "vThStep": int(rng.integers(10, 60)), "refDelay": 1}


def _alif_net(tmp_path, rng):
    specs, shape = dense_net(rng, sizes=(6, 5, 4))
    specs[1]["neuron"] = alif_neuron(rng)
    specs[1]["bias"] = rng.integers(-5, 20, size=5).astype(np.float32)
    return write_net(tmp_path / "alif.net", specs, input_shape=shape), shape


@pytest.mark.parametrize("seed", [0, 1])
def test_alif_runs_on_lava_atrlif_equal_to_the_oracle(tmp_path, seed):
    """ALIF (lava-dl's adaptive LIF; stock NetX cannot build it) on Lava's ATRLIF, a stream,
    continuous: spikes, u (ATRLIF's i) and v of every layer equal the oracle."""
    rng = np.random.default_rng(seed)
    path, shape = _alif_net(tmp_path, rng)
    stream = rng.integers(0, 3, size=(1, 12) + shape)
    with qblif.compile(path) as net:
        assert net.ir.nodes[1]["layer"].proc == "ATRLIF"
        out = net.run(stream, 12, record_uv=True, reset="none")
        ref = forward(net.ir, stream, 12, record_uv=True, stream=True, reset="none")
        assert set(out) == set(ref)
        for key in ref:
            np.testing.assert_array_equal(out[key], ref[key], err_msg=str(key))
        assert ref[1].sum() > 0
        with pytest.raises(ValueError, match="reset='none'"):
            net.run(stream, 12)
        net.ir.nodes[1]["layer"].neuron.params["vThStep"] = 0     # adaptation matters
        assert np.any(forward(net.ir, stream, 12, stream=True, reset="none")[1] != ref[1])


def _rf_net(tmp_path, rng, kind="RF_PHASE"):
    """input 6 -> complex dense 5 (resonate-and-fire) -> dense 4 (CUBA)."""
    specs = [{"type": "input", "shape": np.array([6])},
             {"type": "dense", "shape": np.array([5]),
              "weight/real": even_weights(rng, (5, 6), 80),
              "weight/imag": even_weights(rng, (5, 6), 80),
              "neuron": {"type": kind, "vThMant": int(rng.integers(20, 60)),
                         "sinDecay": int(rng.integers(400, 1500)),
                         "cosDecay": int(rng.integers(3000, 3900))}},
             {"type": "dense", "shape": np.array([4]), "weight": even_weights(rng, (4, 5), 120),
              "neuron": {"type": "CUBA", "vThMant": 20, "iDecay": 1024, "vDecay": 512,
                         "refDelay": 1, "gradedSpike": False}}]
    return write_net(tmp_path / "rf.net", specs, input_shape=(6,))


@pytest.mark.parametrize("seed,kind", [(0, "RF_PHASE"), (1, "RF_PHASE"), (2, "RF_IZHIKEVICH")])
def test_resonate_and_fire_equals_stock_netx(tmp_path, seed, kind):
    """Complex dense weights + an RF_PHASE neuron: Lava's RF behind a real and an imaginary
    Dense, as stock NetX's ComplexDense; a spike stream, continuous; every layer and step
    equal to stock NetX and to the oracle."""
    pytest.importorskip("torch")   # stock NetX's RF parameters come from lava-dl's slayer
    rng = np.random.default_rng(seed)
    path = _rf_net(tmp_path, rng, kind)
    steps = 20
    spikes = (rng.random((steps, 6)) < 0.4).astype(int)
    ref = stock_timeline(path, steps, data=spikes.T)
    with qblif.compile(path, input_bits=1) as net:
        assert net.ir.nodes[1]["layer"].proc == ("RF" if kind == "RF_PHASE" else "RF_IZ")
        tl = net.run(spikes[None], steps, reset="none", timeline=True)
        oracle = simulate(net.ir, spikes[None], steps, stream=True, reset="none")
        for i in (1, 2):
            np.testing.assert_array_equal(tl[i][:steps], ref[i - 1], err_msg=f"layer {i}")
            np.testing.assert_array_equal(tl[i], oracle[i])
        assert ref[0].sum() > 0


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("enc", ["graded", "binary"])
def test_graded_spike_cuba_equals_the_oracle(tmp_path, seed, enc):
    """gradedSpike CUBA (stock NetX sends binary spikes instead): a spike carries v >> 6
    and the receiving Dense divides by 2^6; every layer, step, u and v equal the oracle."""
    from test_compiler_writer import cuba_neuron
    rng = np.random.default_rng(seed)
    specs, shape = dense_net(rng, sizes=(6, 5, 4))
    specs[1]["neuron"] = dict(cuba_neuron(rng, 100), gradedSpike=True)
    path = write_net(tmp_path / "g.net", specs, input_shape=shape)
    frames = rng.integers(0, 16, size=(2,) + shape)
    with qblif.compile(path, encoding=enc) as net:
        assert net.ir.nodes[1]["layer"].proc == "GradedLIF"
        out = net.run(frames, 6, record_uv=True)
        ref = forward(net.ir, frames, 6, record_uv=True)
        for key in ref:
            np.testing.assert_array_equal(out[key], ref[key], err_msg=str(key))
        assert out[1].max() > 1, "no graded payload"
    specs[2] = {"type": "flatten", "shape": np.array([5])}    # a graded CUBA into a conv:
    specs[1]["shape"] = np.array([5, 1, 1])
    specs.append({"type": "conv", "shape": np.array([2, 1, 1]), "kernelSize": np.array([1, 1]),
                  "weight": even_weights(rng, (2, 5, 1, 1)), "neuron": cuba_neuron(rng)})
    specs.pop(2)
    with pytest.raises(CompileError) as err:
        qblif.compile(write_net(tmp_path / "c.net", specs, input_shape=shape))
    assert err.value.key == "type" and "exponent" in str(err.value)
