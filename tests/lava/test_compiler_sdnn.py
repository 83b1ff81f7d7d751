"""SDNN (sigma-delta) layers: lava-dl's own sigma_delta blocks, exported as lava-dl's
Network.export_hdf5 does, compile to Lava's SigmaDelta / Sigma / Delta processes and
reproduce stock ``netx.hdf5.Network`` exactly, streaming several samples the same way
(sigma-delta processes have no reset); malformed SDNN groups raise CompileError; a mixed
QB-LIF / SDNN network compiles and runs like the numpy oracle."""
from __future__ import annotations

import h5py
import numpy as np
import pytest

import qblif
from qblif.core.errors import CompileError
from qblif.exact.oracle import forward
from test_compiler_writer import dense_net, even_weights, qblif_neuron, write_net

SAMPLES, STEPS, IN_BITS = 3, 5, 4


def _export(blocks, path, x, input_shape=None):
    """Run ``x`` through the blocks (sets shapes) and write /layer/<i> like lava-dl;
    ``input_shape``: first write a plain input layer (no neuron) of that shape."""
    import torch
    with torch.no_grad():
        for b in blocks:
            x = b(x)
    with h5py.File(path, "w") as f:
        if input_shape is not None:
            h = f.create_group("layer/0")
            h.create_dataset("type", (1,), "S10", [b"input"])
            h.create_dataset("shape", data=np.array(input_shape))
        for i, b in enumerate(blocks, start=int(input_shape is not None)):
            b.export_hdf5(f.create_group(f"layer/{i}"))
    return path


def _sdnn_dense(tmp_path):
    import torch
    from lava.lib.dl import slayer
    torch.manual_seed(0)
    p = {"threshold": 0.1, "activation": torch.nn.functional.relu}
    blocks = [slayer.block.sigma_delta.Input(p),
              slayer.block.sigma_delta.Dense(p, 10, 8, weight_scale=2),
              slayer.block.sigma_delta.Output(p, 8, 4, weight_scale=2)]
    return _export(blocks, tmp_path / "sdnn_dense.net", torch.rand(1, 10, 3)), (10,)


def _sdnn_conv(tmp_path):
    import torch
    from lava.lib.dl import slayer
    torch.manual_seed(1)
    p = {"threshold": 1 / 64, "activation": torch.nn.functional.relu}
    blocks = [slayer.block.sigma_delta.Conv(p, 2, 3, 3, padding=1, weight_scale=4),
              slayer.block.sigma_delta.Flatten(),
              slayer.block.sigma_delta.Dense(p, 3 * 5 * 5, 6, weight_scale=2),
              slayer.block.sigma_delta.Output(p, 6, 3, weight_scale=2)]
    return _export(blocks, tmp_path / "sdnn_conv.net", 8 * torch.rand(1, 2, 5, 5, 3),
                   input_shape=(2, 5, 5)), (2, 5, 5)


def _stock_netx(path, frames, steps, total, encoder_vth=None):
    """Stock NetX streaming the same frames (each held ``steps`` steps) for ``total`` steps:
    the output layer's messages ``(total, *file-order shape)``.

    With an SDNN input layer (``encoder_vth``): lava-dl 0.6.0's netx Input block never
    connects its ``inp`` to its Delta (blocks/process.py), so stock NetX cannot be fed
    through it; as lava-dl's SDNN tutorials do, the stock network skips it
    (``skip_layers=1``) and is fed by the Delta stock NetX would build for it."""
    from lava.lib.dl import netx
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.proc.io.sink import RingBuffer as Sink
    from lava.proc.io.source import RingBuffer as Source
    from lava.proc.sdn.process import Delta

    lava = frames.transpose((0,) + tuple(range(frames.ndim - 1, 0, -1)))   # (S, W, H, C)
    data = np.zeros(lava.shape[1:] + (total,), np.int32)
    for s in range(len(frames)):
        data[..., s * steps:(s + 1) * steps] = lava[s][..., None]
    ref_net = netx.hdf5.Network(net_config=str(path), input_message_bits=IN_BITS,
                                skip_layers=int(encoder_vth is not None))
    src, snk = Source(data=data), Sink(shape=ref_net.out.shape, buffer=total)
    if encoder_vth is None:
        src.s_out.connect(ref_net.inp)
    else:
        enc = Delta(shape=lava.shape[1:], vth=encoder_vth, spike_exp=6, state_exp=6)
        src.s_out.connect(enc.a_in)
        enc.s_out.connect(ref_net.inp)
    ref_net.out.connect(snk.a_in)
    try:
        ref_net.run(condition=RunSteps(num_steps=total),
                    run_cfg=Loihi2SimCfg(select_tag="fixed_pt"))
        out = snk.data.get()
    finally:
        ref_net.stop()
    out = np.moveaxis(out, -1, 0)                                   # (total, *lava shape)
    return out.transpose((0,) + tuple(range(out.ndim - 1, 0, -1))).astype(np.int64)


@pytest.mark.parametrize("make", [_sdnn_dense, _sdnn_conv], ids=["dense", "conv"])
def test_lava_dl_sdnn_matches_stock_netx(tmp_path, make):
    pytest.importorskip("torch")
    path, in_shape = make(tmp_path)
    frames = np.random.default_rng(0).integers(0, 2 ** IN_BITS, size=(SAMPLES,) + in_shape)
    with qblif.compile(path, input_bits=IN_BITS) as net:
        kinds = {ly.index: ly.proc for ly in qblif.ir.layers(net.ir) if ly.proc}
        first = net.ir.nodes[0]["layer"]
        encoder = first.neuron is not None
        assert kinds.get(0) == ("Delta" if encoder else None)
        assert kinds[net.output_index] == "Sigma"
        assert "SigmaDelta" in kinds.values() and net.ir.graph["stateful"]
        out = net.run(frames, STEPS)
        last = net.ir.nodes[net.output_index]["layer"]
        total = net.last_run["lava_steps"]
        assert "SDNN" in net.report()
    for ly in qblif.ir.layers(net.ir):   # SDNN edges are graded, stock's 16 bits
        if ly.kind in ("dense", "conv"):
            assert qblif.ir.in_message(net.ir, ly.index).wire_bits == (IN_BITS if ly.index == 1 and not encoder else 16)
    ref = _stock_netx(path, frames, STEPS, total, first.neuron.vth if encoder else None)
    cols = np.arange(SAMPLES)[:, None] * STEPS + last.reset_offset - 1 + np.arange(STEPS)
    want = ref[cols]                                      # (S, T, *shape)
    assert np.abs(want).sum() > 0, "silent network: no evidence"
    np.testing.assert_array_equal(out[net.output_index], want)
    if encoder:   # the encoder's messages are recorded too: deltas of the frames, x 2^6
        assert out[0][:, 0].any() and set(np.unique(out[0][:, 1:])) <= {0}
    # the same run in the binary encoding: SDNN messages stay graded, results equal
    with qblif.compile(path, encoding="binary", input_bits=IN_BITS) as net_b:
        assert net_b.ir.graph["graded_sdnn_edges"]
        assert "stay graded" in net_b.report()
        out_b = net_b.run(frames, STEPS)
    for i in out:
        np.testing.assert_array_equal(out_b[i], out[i])


def test_signed_frames_into_an_sdnn_conv_after_a_plain_input(tmp_path):
    """lava-dl's usual SDNN layout (a neuron-less input, then a sigma-delta conv) takes
    signed frames, as stock NetX does: Lava (both encodings) and the exact engine equal
    stock; the input message is signed and graded. A spiking first layer still refuses
    frames outside ``0 .. 2**inputBits - 1``."""
    pytest.importorskip("torch")
    path, in_shape = _sdnn_conv(tmp_path)
    frames = np.random.default_rng(4).integers(-40, 40, size=(SAMPLES,) + in_shape)
    assert frames.min() < 0
    with qblif.compile(path, input_bits=IN_BITS) as net:
        msg = net.ir.graph["input_message"]
        assert msg.signed and msg.graded_only
        out = net.run(frames, STEPS)[net.output_index]
        ex = net.run(frames, STEPS, engine="exact")[net.output_index]
        last, total = net.ir.nodes[net.output_index]["layer"], net.last_run["lava_steps"]
    with qblif.compile(path, encoding="binary", input_bits=IN_BITS) as net_b:
        out_b = net_b.run(frames, STEPS)[net_b.output_index]
    ref = _stock_netx(path, frames, STEPS, total)
    cols = np.arange(SAMPLES)[:, None] * STEPS + last.reset_offset - 1 + np.arange(STEPS)
    assert np.abs(ref[cols]).sum() > 0, "silent network: no evidence"
    for got in (out, ex, out_b):
        np.testing.assert_array_equal(got, ref[cols])
    specs, shape = dense_net(np.random.default_rng(0))
    spiking = write_net(tmp_path / "spiking.net", specs)
    with qblif.compile(spiking, input_bits=IN_BITS) as net:
        assert not net.ir.graph["input_message"].signed
        with pytest.raises(ValueError, match=r"inputBits=4"):
            net.run(-np.ones((1,) + shape, int), 2, engine="exact")


def mixed_sdnn_net(path, input_bits, rng):
    """A mixed QB-LIF -> SDNN -> QB-LIF -> Sigma dense net (8 inputs, random parameters from
    ``rng``), written to ``path``."""
    specs = [{"type": "input", "shape": np.array([8])},
             {"type": "dense", "shape": np.array([7]), "weight": even_weights(rng, (7, 8)),
              "neuron": qblif_neuron(rng, 7, 3, "subtract", False, vth_scale=60)},
             {"type": "dense", "shape": np.array([6]), "weight": even_weights(rng, (6, 7)),
              "bias": rng.integers(-20, 20, size=6),
              "neuron": {"type": "SDNN", "activation": "relu", "vThMant": 0}},
             {"type": "dense", "shape": np.array([5]), "weight": even_weights(rng, (5, 6)),
              "neuron": qblif_neuron(rng, 5, 2, "zero", False, vth_scale=100)},
             {"type": "dense", "shape": np.array([4]), "weight": even_weights(rng, (4, 5)),
              "neuron": {"type": "SDNN", "activation": "relu", "vThMant": 0,
                         "sigma_output": True}}]
    return write_net(path, specs, input_bits=input_bits)


def test_sdnn_streaming_matches_numpy_oracle(tmp_path):
    """A mixed QB-LIF -> SDNN -> Sigma net: Lava equals qblif.exact.oracle (which carries
    SDNN state across samples) in both encodings."""
    rng = np.random.default_rng(3)
    path = mixed_sdnn_net(tmp_path / "mixed.net", IN_BITS, rng)
    frames = rng.integers(0, 2 ** IN_BITS, size=(SAMPLES, 8))
    for enc in ("graded", "binary"):
        with qblif.compile(path, encoding=enc) as net:
            assert [net.ir.nodes[i]["layer"].proc for i in (1, 2, 3, 4)] == \
                ["QBLIF", "SigmaDelta", "QBLIF", "Sigma"]
            out = net.run(frames, STEPS)
            ref = forward(net.ir, frames, STEPS)
        assert set(out) == set(ref)
        for i in ref:
            np.testing.assert_array_equal(out[i], ref[i], err_msg=f"{enc} layer {i}")
        assert (ref[2] != 0).any() and (ref[4] != 0).any() and ref[3].sum() > 0


def _sdnn_file(tmp_path, neuron, bias=None, input_neuron=None, input_extra=()):
    rng = np.random.default_rng(0)
    inp = {"type": "input", "shape": np.array([6])}
    if input_neuron is not None:
        inp["neuron"] = input_neuron
    inp.update(dict(input_extra))
    dense = {"type": "dense", "shape": np.array([4]), "weight": even_weights(rng, (4, 6)),
             "neuron": neuron}
    if bias is not None:
        dense["bias"] = bias
    return write_net(tmp_path / "bad.net", [inp, dense], input_bits=IN_BITS)


GOOD = {"type": "SDNN", "activation": "relu", "vThMant": 6}
BAD = [  # (neuron group, bias, input neuron, input extras, layer, key)
    (dict(GOOD, vThMant=-1), None, None, {}, 1, "neuron/vThMant"),
    (dict(GOOD, vThMant=2 ** 17), None, None, {}, 1, "neuron/vThMant"),
    (dict(GOOD, vThMant=np.array([1, 2, 3, 4])), None, None, {}, 1, "neuron/vThMant"),
    (dict(GOOD, vThMant=2.5), None, None, {}, 1, "neuron/vThMant"),
    ({"type": "SDNN", "activation": "relu"}, None, None, {}, 1, "neuron/vThMant"),
    (dict(GOOD, activation="tanh"), None, None, {}, 1, "neuron/activation"),
    (dict(GOOD, activation=np.array([1, 2])), None, None, {}, 1, "neuron/activation"),
    (dict(GOOD, messageBits=0), None, None, {}, 1, "neuron/messageBits"),
    (dict(GOOD, messageBits=25), None, None, {}, 1, "neuron/messageBits"),
    (dict(GOOD, messageBits=np.array([8, 8])), None, None, {}, 1, "neuron/messageBits"),
    (dict(GOOD, cum_error=True), None, None, {}, 1, "neuron/cum_error"),
    (dict(GOOD, sigma_output=False), None, None, {}, 1, "neuron/sigma_output"),
    (dict(GOOD, sigma_output=np.array([1, 1])), None, None, {}, 1, "neuron/sigma_output"),
    (dict(GOOD, sigma_output=True), np.arange(4), None, {}, 1, "bias"),
    (dict(GOOD, maxBurst=4), None, None, {}, 1, "neuron/type"),
    (dict(GOOD, iDecay=1), None, None, {}, 1, "neuron/type"),
    (GOOD, np.full(4, 10 ** 5), None, {}, 1, "bias"),
    (GOOD, None, dict(GOOD, sigma_output=True), {}, 0, "neuron/sigma_output"),
    (GOOD, None, dict(GOOD, vThMant=-3), {}, 0, "neuron/vThMant"),
    (GOOD, None, {"type": "QBLIF", "vThMant": 5, "iDecay": 1, "vDecay": 1, "maxBurst": 2},
     {}, 0, "neuron"),   # (a CUBA input neuron is supported: driven by its bias)
    (GOOD, None, GOOD, {"weight": 3}, 0, "weight"),
    (GOOD, None, GOOD, {"bias": 1}, 0, "bias"),
]


@pytest.mark.parametrize("neuron,bias,inp,extra,layer,key", BAD)
def test_malformed_sdnn_group_raises(tmp_path, neuron, bias, inp, extra, layer, key):
    path = _sdnn_file(tmp_path, neuron, bias, inp, extra)
    with pytest.raises(CompileError) as err:
        qblif.compile(path)
    assert err.value.layer == layer and err.value.key == key, str(err.value)


def test_sdnn_defaults_as_stock_netx(tmp_path):
    """messageBits defaults to 16 and activation to relu; an input Delta with lava-dl's
    default transform (weight 64, bias 0) is accepted; SDNN has no u/v to record."""
    path = _sdnn_file(tmp_path, {"type": "SDNN", "vThMant": 2}, input_neuron=GOOD,
                      input_extra={"weight": 64, "bias": 0})
    net = qblif.compile(path)
    ly = net.ir.nodes[1]["layer"]
    assert ly.neuron.message_bits == 16 and ly.neuron.activation == "relu"
    assert ly.proc == "SigmaDelta" and net.ir.nodes[0]["layer"].proc == "Delta"
    assert qblif.ir.in_message(net.ir, ly.index).wire_bits == 16    # the encoder's default messageBits
    with pytest.raises(NotImplementedError):
        forward(net.ir, np.zeros((1, 6), int), 2, record_uv=True)


def test_cli_check_refuses_sdnn_with_one_line(tmp_path, capsys):
    """``qblif run --check`` compares with qblif-lava's SLAYER export, which has no SDNN."""
    import torch
    from lava.lib.dl import slayer
    from qblif.cli.main import main
    torch.manual_seed(0)
    p = {"threshold": 0.1, "activation": torch.nn.functional.relu}
    blocks = [slayer.block.sigma_delta.Dense(p, 64, 8, weight_scale=2),
              slayer.block.sigma_delta.Output(p, 8, 10, weight_scale=2)]
    path = _export(blocks, tmp_path / "sdnn64.net", torch.rand(1, 64, 3))
    with h5py.File(path, "r+") as f:
        f.create_dataset("qblif/inputShape", data=np.array([64]))
        f.create_dataset("qblif/inputBits", data=4)
        f.create_dataset("qblif/timesteps", data=3)
    rc = main(["run", str(path), "--dataset", "digits", "--samples", "2", "--check"])
    err = capsys.readouterr().err
    assert rc == 2
    errors = [line for line in err.splitlines() if line.startswith("qblif run: error")]
    assert len(errors) == 1 and "SDNN" in errors[0]
    assert "Lava:" not in err, "the check must be refused before anything runs"
