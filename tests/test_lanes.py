"""Sample lanes: ``run(..., lanes=L)`` runs L samples side by side in one Lava run and
gives exactly ``lanes=1``'s counts on every layer and step (S not a multiple of L
included), in both encodings; features lanes do not cover are refused by name."""
from __future__ import annotations

import numpy as np
import pytest

import compiler
from lava_harness import child_pids, settled, shm_segments
from compiler.ir import layers
from test_compiler_writer import conv_net, dense_net, write_net

DIGITS = "netx_models/digits_qblif_mlp.net"


def _frames(net, rng, samples):
    hi = 2 ** int(net.ir.graph["input_bits"])
    return rng.integers(0, hi, size=(samples,) + tuple(net.input_shape))


def _same_as_one_lane(net, frames, steps, lanes_list):
    one = net.run(frames, steps)
    assert net.last_run["lava_steps"] == len(frames) * steps + net.ir.graph["depth"]
    for lanes in lanes_list:
        out = net.run(frames, steps, lanes=lanes)
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
    with compiler.compile(DIGITS, encoding=encoding) as net:
        frames = _frames(net, np.random.default_rng(0), 5)     # 5: not a multiple of 2 or 3
        one = _same_as_one_lane(net, frames, 6, (2, 3))
        assert max(o.max() for o in one.values()) > 1, "no burst > 1 exercised"
    assert settled(before_pids, before_shm) == (set(), set())


@pytest.mark.parametrize("encoding", ["graded", "binary"])
def test_conv_pool_net_lanes_equal_one_lane(tmp_path, encoding):
    rng = np.random.default_rng(3)
    specs, shape = conv_net(rng, c_in=2, hw=6, k=3, reset_mode="subtract", pool=True)
    path = write_net(tmp_path / "c.net", specs, shape)
    with compiler.compile(path, encoding=encoding) as net:
        assert {ly.kind for ly in layers(net.ir)} >= {"conv", "pool", "flatten",
                                                                  "dense"}
        _same_as_one_lane(net, _frames(net, rng, 4), 4, (3,))


def test_mixed_cuba_qblif_dense_lanes(tmp_path):
    rng = np.random.default_rng(7)
    specs, shape = dense_net(rng, (10, 8, 6, 4), k=3, reset_mode="subtract", cuba=(1,))
    path = write_net(tmp_path / "m.net", specs, shape)
    with compiler.compile(path) as net:
        assert "LIF" in {net.ir.nodes[i]["layer"].proc for i in (1, 2, 3)}
        frames = _frames(net, rng, 5)
        one = _same_as_one_lane(net, frames, 4, (2,))
        # Lava's stock Dense model multiplies the whole block-diagonal matrix; the fast one
        # (sample_lanes hint) one block per lane: both equal lanes=1
        stock = net.run(frames, 4, lanes=2, models="stock")
    for i in one:
        np.testing.assert_array_equal(stock[i], one[i], err_msg=f"stock layer {i}")


def test_lanes_record_subset_and_predict_shape():
    with compiler.compile(DIGITS) as net:
        frames = _frames(net, np.random.default_rng(1), 3)
        last = net.output_index
        one = net.run(frames, 5, layers_to_record=[last])
        two = net.run(frames, 5, layers_to_record=[last], lanes=2)
        pred = net.predict(frames, 5, lanes=2)
    assert set(two) == {last}
    np.testing.assert_array_equal(two[last], one[last])
    np.testing.assert_array_equal(pred, one[last].reshape(3, 5, -1).sum(1).argmax(1))


@pytest.mark.parametrize("kw,word", [
    (dict(record_uv=True), "record_uv"), (dict(reset="none"), "reset"),
    (dict(timeline=True), "timeline"), (dict(engine="exact"), "engine")])
def test_lanes_refuse_uncovered_modes(kw, word):
    with compiler.compile(DIGITS) as net:
        frames = _frames(net, np.random.default_rng(2), 2)
        with pytest.raises(ValueError, match=word):
            net.run(frames, 3, lanes=2, **kw)
        with pytest.raises(ValueError, match="lanes"):
            net.run(frames, 3, lanes=0)
        with pytest.raises(TypeError, match="lanes"):
            net.run(frames, 3, lanes=2.0)


def test_lanes_refuse_stream_and_delays(tmp_path):
    rng = np.random.default_rng(5)
    specs, shape = dense_net(rng, (6, 5, 4), k=2)
    specs[1]["delay"] = np.ones((5,), np.float32)
    path = write_net(tmp_path / "d.net", specs, shape)
    with compiler.compile(path) as net:
        with pytest.raises(ValueError, match=r"layer 1 .*delays"):
            net.run(_frames(net, rng, 2), 3, lanes=2)
        with pytest.raises(ValueError, match="stream"):
            net.run(rng.integers(0, 2, size=(2, 3) + shape), 3, lanes=2)


def test_cli_run_lanes(tmp_path):
    from qblif_lava.cli import main
    rng = np.random.default_rng(4)
    with compiler.compile(DIGITS) as net:
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
    with compiler.compile(FMNIST) as net:
        pools = [ly for ly in layers(net.ir) if ly.kind == "pool"]
        assert max(ly.synapse.groups for ly in pools) * 2 > 127
        _same_as_one_lane(net, _frames(net, np.random.default_rng(6), 3), 3, (2,))


def test_lanes_refuse_stock_conv_groups_and_huge_dense():
    with compiler.compile(FMNIST) as net:
        frames = _frames(net, np.random.default_rng(8), 2)
        with pytest.raises(ValueError, match=r"layer 3 \(pool\).*groups.*models='fast'"):
            net.run(frames, 2, lanes=2, models="stock")
        with pytest.raises(ValueError, match=r"layer 5 \(dense\).*lanes <= 9"):
            net.run(frames, 2, lanes=64)
