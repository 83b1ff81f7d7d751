"""The exact engine (qblif.exact) in every run mode of docs/coverage.md and with the
neurons that have no reset: input streams (per-sample batches), ``reset="none"`` (continuous),
stock NetX's ``reset="netx"`` schedule, ``timeline=True`` (global timeline,
qblif.exact.timeline), ALIF (Lava's ATRLIF) and resonate-and-fire (Lava's RF, RF_IZ),
SDNN. Equal to the numpy oracle (qblif.exact.oracle: ``forward`` windows and ``simulate``
timelines) on every layer and step, u and v where recorded, for random IR networks (seeds 0,
1), lava-dl-made networks (tests/lavadl_nets.py) and the shipped models; equal to the Lava run
for one network per mode and kind."""
from __future__ import annotations

import copy
import glob
import os

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import qblif  # noqa: E402
from qblif.exact import ExactEngine, native  # noqa: E402
from qblif.exact import timeline as tl  # noqa: E402
from qblif.exact.oracle import forward, simulate  # noqa: E402
from test_coverage_modes import _alif_net, _rf_net, _stream_net  # noqa: E402
from test_exact_engine import _sdnn_nets  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODELS = sorted(glob.glob(os.path.join(ROOT, "netx_models", "*.net")))
PATHS = [False, True] if native.library() is not None else [False]   # native kernel off / on

#: the run modes of CompiledNetwork.run besides the default per-sample reset
MODES = [dict(reset="sample"), dict(reset="none"),
         dict(reset="netx", reset_interval=5, reset_offset=2),
         dict(reset="netx", reset_interval=3, reset_offset=0)]


def _same(got, want, what=""):
    assert set(got) == set(want), (what, sorted(map(str, got)), sorted(map(str, want)))
    for k in want:
        assert got[k].shape == want[k].shape, (what, k)
        np.testing.assert_array_equal(got[k], want[k], err_msg=f"{what} {k}")


def _check_modes(ir, x, steps, stream, record_uv=True, paths=PATHS, modes=MODES,
                 batch_size=None):
    """Engine windows and timelines equal the oracle's in every mode; the oracle's windows."""
    wins = {}
    for m in modes:
        want = forward(ir, x, steps, record_uv=record_uv, stream=stream, **m)
        want_tl = simulate(ir, x, steps, record_uv=record_uv, stream=stream, **m)
        for nat in paths:
            eng = ExactEngine(ir, native=nat, batch_size=batch_size)
            what = f"{m} stream={stream} native={nat}"
            _same(eng.run(x, steps, record_uv=record_uv, stream=stream, **m), want, what)
            _same(eng.run(x, steps, record_uv=record_uv, stream=stream, timeline=True, **m),
                  want_tl, "timeline " + what)
        wins[m.get("reset"), m.get("reset_interval")] = want
    return wins


# ----------------------------------------------------------------------------- random nets

@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("conv", [False, True], ids=["dense", "conv"])
def test_streams_and_resets_equal_the_oracle(tmp_path, seed, conv):
    """QB-LIF nets (K = 3, both resets, per-neuron thresholds, a bias): streams and held frames
    in every reset mode, windows and timelines, u and v; batches of 1 and more samples."""
    rng = np.random.default_rng(seed)
    path, shape = _stream_net(tmp_path, rng, conv=conv)
    stream = rng.integers(0, 16, size=(3, 4) + shape)
    frames = rng.integers(0, 16, size=(3,) + shape)
    with qblif.compile(path) as net:
        w = _check_modes(net.ir, stream, 6, True, batch_size=2)
        _check_modes(net.ir, frames, 6, False)
    last = max(k for k in w[("sample", None)] if isinstance(k, int))
    assert w[("sample", None)][last].sum() > 0, "silent network"
    assert any(np.any(w[("sample", None)][k] != w[m][k]) for m in w if m[0] != "sample"
               for k in w[m]), "the reset mode has no effect"


@pytest.mark.parametrize("seed", [0, 1])
def test_alif_equals_the_oracle(tmp_path, seed):
    """ALIF (Lava's ATRLIF): streams of several samples, continuous; spikes, u and v."""
    rng = np.random.default_rng(seed)
    path, shape = _alif_net(tmp_path, rng)
    stream = rng.integers(0, 3, size=(3, 10) + shape)
    with qblif.compile(path) as net:
        w = _check_modes(net.ir, stream, 12, True, modes=[dict(reset="none")])
        assert w[("none", None)][1].sum() > 0 and ("u", 1) in w[("none", None)]
        for run in (lambda: net.run(stream, 12, engine="exact"),
                    lambda: ExactEngine(net.ir).run(stream, 12, stream=True),
                    lambda: next(ExactEngine(net.ir).chunks(stream, 12, stream=True))):
            with pytest.raises(ValueError, match="reset='none'"):
                run()
        ly = net.ir.nodes[1]["layer"]
        ly.neuron.params["vThStep"] = 0                   # the adaptation matters
        assert np.any(ExactEngine(net.ir).run(stream, 12, stream=True, reset="none")[1]
                      != w[("none", None)][1])


@pytest.mark.parametrize("seed,kind", [(0, "RF_PHASE"), (1, "RF_PHASE"), (0, "RF_IZHIKEVICH"),
                                       (1, "RF_IZHIKEVICH")])
def test_resonate_and_fire_equals_the_oracle(tmp_path, seed, kind):
    """RF and RF_IZ behind a complex dense synapse, a spike stream, continuous."""
    rng = np.random.default_rng(seed)
    path = _rf_net(tmp_path, rng, kind)
    spikes = (rng.random((2, 15, 6)) < 0.4).astype(int)
    with qblif.compile(path, input_bits=1) as net:
        w = _check_modes(net.ir, spikes, 16, True, modes=[dict(reset="none")])
        assert w[("none", None)][1].sum() > 0 and ("u", 1) not in w[("none", None)]
        with pytest.raises(ValueError, match="reset='none'"):
            net.run(spikes, 16, engine="exact", reset="netx", reset_interval=4)


def test_sdnn_in_every_mode_equals_the_oracle(tmp_path):
    """SigmaDelta / Sigma / Delta (never reset) mixed with QB-LIF: signed streams into a Delta
    encoder, held frames, every reset mode (the QB-LIF layers follow it, SDNN ignores it)."""
    rng = np.random.default_rng(7)
    for path, shape in _sdnn_nets(tmp_path):
        with qblif.compile(path, input_bits=4) as net:
            signed = net.ir.graph["input_neuron"] == "Delta"
            lo = -16 if signed else 0
            stream = rng.integers(lo, 16, size=(3, 4) + tuple(shape))
            w = _check_modes(net.ir, stream, 5, True, record_uv=False, batch_size=2)
            assert any(np.abs(v).sum() > 0 for v in w[("none", None)].values())
            with pytest.raises(NotImplementedError, match="u, v"):
                ExactEngine(net.ir).run(stream, 5, stream=True, reset="none", record_uv=True)


# ----------------------------------------------------------------------------- lava-dl nets

#: lava-dl features the timeline path runs; the rest are layer kinds it refuses for now
TIMELINE_FEATURES = {"dense", "graded_input", "conv", "pool", "rf", "rf_iz", "alif", "sdnn",
                     "affine", "dense_no_neuron", "input_neuron", "input_transform",
                     "input_neuron_conv", "recurrent", "recurrent_delay", "dense_delay",
                     "conv_delay", "graded", "average"}


def _lavadl_cases():
    import lavadl_nets
    return [pytest.param(f, s, id=f"{f}-{s}") for f in lavadl_nets.FEATURES for s in (0, 1)]


@pytest.mark.parametrize("feature,seed", _lavadl_cases())
def test_lavadl_block_nets_on_the_timeline(tmp_path, feature, seed):
    """Every lava-dl-made network of tests/lavadl_nets.py, one stream, continuous (as
    test_coverage_lavadl_blocks runs them through Lava): equal to the oracle's timeline on
    every layer and step (u, v where the layers have them); or refused with a clear
    NotImplementedError naming the layer and the feature. A neuron-less (integrator) layer
    is a CUBA neuron to the timeline."""
    import lavadl_nets as nets
    info = nets.make_net(feature, seed, tmp_path / f"{feature}_{seed}.net")
    x = nets.make_stream(info, seed, 10, 6)[None]
    stream = info["input_kind"] != "bias"
    uv = info["input_kind"] != "signed"
    with qblif.compile(info["path"]) as net:
        eng = ExactEngine(net.ir) if feature in TIMELINE_FEATURES else None
        if eng is None:
            with pytest.raises(NotImplementedError, match=r"layer \d+: the exact engine has no"):
                ExactEngine(net.ir).run(x, 10, stream=stream, reset="none", timeline=True)
            return
        got = eng.run(x, 10, stream=stream, reset="none", timeline=True, record_uv=uv)
        want = simulate(net.ir, x, 10, stream=stream, reset="none", record_uv=uv)
        _same(got, want, feature)
        assert any(np.abs(want[i]).sum() > 0 for i in want if isinstance(i, int))


#: the lava-dl block nets with coverage kinds (qblif.exact.kinds)
KIND_FEATURES = ("input_neuron", "input_neuron_conv", "recurrent", "recurrent_delay",
                 "dense_delay", "conv_delay", "graded", "average")


@pytest.mark.parametrize("feature", KIND_FEATURES)
def test_coverage_kinds_in_every_mode(tmp_path, feature):
    """The coverage kinds (delays whose lines forget at the sample reset, dense_rec whose
    feedback the sample reset drops, graded CUBA, average, bias-driven input) with streams
    and held frames in every reset mode, windows and timelines, u and v: equal to the oracle
    (streams with reset="sample" run on the timeline)."""
    import lavadl_nets as nets
    info = nets.make_net(feature, 0, tmp_path / f"{feature}.net")
    with qblif.compile(info["path"]) as net:
        if info["input_kind"] == "bias":
            frames = np.stack([nets.make_input(info, s, 1) for s in (0, 1)])
            stream = np.stack([frames, frames[::-1], frames], axis=1)   # a frame per step
        else:
            stream = np.stack([nets.make_input(info, s, 3) for s in (0, 1)])
            frames = stream[:, 0]
        wins = _check_modes(net.ir, stream, 4, True, paths=PATHS[-1:])
        assert any(np.abs(v).sum() > 0 for k, v in wins["sample", None].items()
                   if isinstance(k, int))
        _check_modes(net.ir, frames, 4, False, paths=PATHS[-1:], modes=MODES[1:])


# ----------------------------------------------------------------------------- shipped models

@pytest.mark.parametrize("path", MODELS, ids=[os.path.basename(p) for p in MODELS])
def test_shipped_models_in_every_mode(path):
    """The shipped models: held frames and spike streams, every reset mode, every layer."""
    rng = np.random.default_rng(3)
    with qblif.compile(path) as net:
        shape = net.input_shape
        frames = rng.integers(0, 2 ** int(net.ir.graph["input_bits"]), size=(2,) + shape)
        _check_modes(net.ir, frames, 3, False, record_uv=False, paths=PATHS[-1:],
                     modes=MODES[1:3])
        spikes = (rng.random((2, 3) + shape) < 0.3).astype(int)
        _check_modes(net.ir, spikes, 4, True, record_uv=False, paths=PATHS[-1:],
                     modes=MODES[:2])


# ----------------------------------------------------------------------------- against Lava

def _vs_lava(net, x, steps, **modes):
    lava = net.run(x, steps, **modes)
    exact = net.run(x, steps, engine="exact", **modes)
    assert net.last_run["engine"] == "exact"
    _same(exact, lava, str(modes))
    assert any(np.abs(v).sum() > 0 for k, v in lava.items() if isinstance(k, int))


def test_engine_equals_lava_in_every_mode_and_kind(tmp_path):
    """``net.run(engine="exact")`` equals the Lava run on every layer and step (u, v where
    recorded): a stream per sample; continuous; stock's netx schedule as a timeline; ALIF;
    RF; SDNN streamed continuously."""
    rng = np.random.default_rng(11)
    path, shape = _stream_net(tmp_path, rng, conv=True)
    stream = rng.integers(0, 16, size=(2, 3) + shape)
    with qblif.compile(path) as net:
        _vs_lava(net, stream, 4, record_uv=True)                                  # stream
        _vs_lava(net, stream, 4, record_uv=True, reset="none")                    # continuous
        _vs_lava(net, stream[:, 0], 4, reset="netx", reset_interval=3, reset_offset=1,
                 timeline=True)
        assert net.last_run["lava_steps"] == 2 * 4 + net.ir.graph["depth"]
    path, shape = _alif_net(tmp_path, rng)
    with qblif.compile(path) as net:
        _vs_lava(net, rng.integers(0, 3, size=(2, 6) + shape), 6, record_uv=True, reset="none")
    with qblif.compile(_rf_net(tmp_path, rng), input_bits=1) as net:
        _vs_lava(net, (rng.random((1, 12, 6)) < 0.4).astype(int), 12, reset="none",
                 timeline=True)
    sd_path, sd_shape = _sdnn_nets(tmp_path)[0]
    with qblif.compile(sd_path, input_bits=4) as net:
        _vs_lava(net, rng.integers(0, 16, size=(2, 3) + tuple(sd_shape)), 4, reset="none")
    digits = [p for p in MODELS if "digits" in p]
    with qblif.compile(digits[0]) as net:        # a shipped model: spike streams
        spikes = (rng.random((2, 4) + net.input_shape) < 0.5).astype(int)
        _vs_lava(net, spikes, 4, reset="none", record_uv=True)
        _vs_lava(net, spikes, 4, reset="netx", reset_interval=3, timeline=True)


@pytest.mark.parametrize("name", ["delay", "conv_delay", "sdnn_delay", "graded_rec"])
def test_random_kind_nets_with_streams_and_resets(tmp_path, name):
    """tests/test_exact_engine_kinds.py's random kind nets (delays longer than T that reach
    into earlier samples: per input, per synapse, SDNN; a recurrent graded layer; average):
    streams per sample (chunks of 1 and 3, both neuron implementations, the carry across
    chunks) and streams and held frames in the timeline's modes, equal to the oracle."""
    from test_exact_engine_kinds import RANDOM_NETS
    build, steps = RANDOM_NETS[name]
    rng = np.random.default_rng(5)
    with qblif.compile(build(tmp_path, rng), input_bits=4) as net:
        uv = not net.ir.graph["stateful"]
        stream = rng.integers(0, 16, size=(4, steps) + net.input_shape)
        for bs in (1, 3):
            wins = _check_modes(net.ir, stream, steps, True, record_uv=uv, modes=MODES[:1],
                                batch_size=bs)
        assert all(np.abs(v).sum() > 0 for k, v in wins["sample", None].items()
                   if isinstance(k, int)), "silent"
        _check_modes(net.ir, stream, steps, True, record_uv=uv, modes=MODES[1:],
                     paths=PATHS[-1:])
        _check_modes(net.ir, stream[:, 0], steps, False, record_uv=uv, modes=MODES[1:],
                     paths=PATHS[-1:])


def _sdnn_rec_net(tmp_path, rng):
    """QB-LIF -> a recurrent SDNN dense_rec (bias; per-output delays on its output) ->
    QB-LIF."""
    from test_compiler_writer import even_weights, qblif_neuron, write_net
    specs = [{"type": "input", "shape": np.array([6])},
             {"type": "dense", "shape": np.array([5]), "weight": even_weights(rng, (5, 6)),
              "neuron": qblif_neuron(rng, 5, 3, "subtract", False, 60)},
             {"type": "dense_rec", "shape": np.array([4]), "weight": even_weights(rng, (4, 5)),
              "weight_rec": even_weights(rng, (4, 4), 30), "bias": rng.integers(-20, 20, 4),
              "delay": rng.integers(0, 3, size=4).astype(np.float32),
              "neuron": {"type": "SDNN", "activation": "relu", "vThMant": 0}},
             {"type": "dense", "shape": np.array([3]), "weight": even_weights(rng, (3, 4), 10),
              "neuron": qblif_neuron(rng, 3, 2, "zero", False, 200)}]
    return write_net(tmp_path / "sdnn_rec.net", specs, input_shape=(6,))


@pytest.mark.parametrize("seed", [0, 1])
def test_recurrent_sdnn_on_the_timeline(tmp_path, seed):
    """A recurrent SDNN layer (never reset: its feedback runs from sample to sample, so every
    mode runs on the timeline): streams and held frames in every mode equal the oracle; the
    feedback matters."""
    rng = np.random.default_rng(seed)
    with qblif.compile(_sdnn_rec_net(tmp_path, rng), input_bits=4) as net:
        stream = rng.integers(0, 16, size=(3, 4) + net.input_shape)
        wins = _check_modes(net.ir, stream, 5, True, record_uv=False, paths=PATHS[-1:])
        _check_modes(net.ir, stream[:, 0], 5, False, record_uv=False, paths=PATHS[-1:])
        assert all(np.abs(v).sum() > 0 for v in wins["sample", None].values())
        net.ir.nodes[2]["layer"].weight_rec = 0 * net.ir.nodes[2]["layer"].weight_rec
        assert not np.array_equal(forward(net.ir, stream, 5, stream=True)[2],
                                  wins["sample", None][2])


def _alif_rec_net(tmp_path, rng):
    """input 6 -> a recurrent ALIF dense_rec 5 (per-output delays on its spikes) -> QB-LIF 4."""
    from test_compiler_writer import dense_net, even_weights, write_net
    from test_coverage_modes import alif_neuron
    specs, shape = dense_net(rng, sizes=(6, 5, 4))
    specs[1].update(type="dense_rec", weight_rec=even_weights(rng, (5, 5), 60),
                    delay=rng.integers(0, 3, size=5).astype(np.float32))
    specs[1]["neuron"] = alif_neuron(rng, vth=(40, 80))
    return write_net(tmp_path / "alif_rec.net", specs, input_shape=shape), shape


@pytest.mark.parametrize("seed", [0, 1])
def test_recurrent_alif_on_the_timeline(tmp_path, seed):
    """A recurrent ALIF layer with output delays, continuous: equal to the oracle (u, v);
    the feedback matters."""
    rng = np.random.default_rng(seed)
    path, shape = _alif_rec_net(tmp_path, rng)
    with qblif.compile(path) as net:
        x = rng.integers(0, 3, size=(2, 6) + shape)
        wins = _check_modes(net.ir, x, 6, True, modes=MODES[1:2])
        assert np.abs(wins["none", None][1]).sum() > 0
        net.ir.nodes[1]["layer"].weight_rec = 0 * net.ir.nodes[1]["layer"].weight_rec
        assert not np.array_equal(forward(net.ir, x, 6, stream=True, reset="none")[1],
                                  wins["none", None][1])


def test_coverage_kinds_equal_lava_on_the_timeline(tmp_path):
    """A lava-dl recurrent net with output delays and a graded-spike CUBA net through Lava,
    a stream continuous (u, v), and with the sample reset (delay lines and feedback that
    forget); an average net's continuous timeline (Lava's leaves the average out); a
    recurrent SDNN net with streams per sample (its feedback runs on across samples); a
    recurrent ALIF net with output delays, continuous (u, v); a bias-driven input neuron
    with ``input_transform``, continuous (u, v):
    ``net.run(engine="exact")`` gives the Lava run's counts."""
    import lavadl_nets as nets
    for feature in ("recurrent_delay", "graded"):
        info = nets.make_net(feature, 0, tmp_path / f"{feature}.net")
        stream = np.stack([nets.make_input(info, s, 5) for s in (0, 1)])
        with qblif.compile(info["path"]) as net:
            _vs_lava(net, stream, 5, reset="none", record_uv=True)
            _vs_lava(net, stream, 5)
    info = nets.make_net("average", 0, tmp_path / "average.net")   # Lava's timeline: no average
    with qblif.compile(info["path"]) as net:
        _vs_lava(net, np.stack([nets.make_input(info, 0, 5)]), 5, reset="none", timeline=True)
    rng = np.random.default_rng(0)
    with qblif.compile(_sdnn_rec_net(tmp_path, rng), input_bits=4) as net:
        _vs_lava(net, rng.integers(0, 16, size=(2, 4) + net.input_shape), 5)
    path, shape = _alif_rec_net(tmp_path, rng)
    with qblif.compile(path) as net:
        _vs_lava(net, rng.integers(0, 3, size=(1, 6) + shape), 6, reset="none", record_uv=True)
    info = nets.make_net("input_transform", 0, tmp_path / "input_transform.net")
    with qblif.compile(info["path"]) as net:    # real inputs through the file's transform
        x = rng.uniform(0, 100, size=(2,) + net.input_shape)
        _vs_lava(net, x, 6, reset="none", input_transform=True, record_uv=True)


# ----------------------------------------------------------------------------- refusals

def test_timeline_refuses_what_it_lacks_and_bad_input(tmp_path):
    rng = np.random.default_rng(2)
    path, shape = _stream_net(tmp_path, rng, delays=np.array([0, 1, 2, 0, 1], np.float32))
    x = rng.integers(0, 4, size=(1, 3) + shape)
    with qblif.compile(path) as net:      # delays: no longer refused
        for reset in ("none", "sample"):
            _same(ExactEngine(net.ir).run(x, 4, stream=True, reset=reset),
                  forward(net.ir, x, 4, stream=True, reset=reset), f"delays {reset}")
    with qblif.compile(_rf_net(tmp_path, rng), input_bits=1) as net:   # still refused
        ir = copy.deepcopy(net.ir)
    ir.nodes[1]["layer"].delay = np.ones(5, np.int64)
    with pytest.raises(NotImplementedError, match="layer 1: .*resonate-and-fire"):
        ExactEngine(ir).run(np.zeros((1, 4, 6), int), 4, stream=True, reset="none")
    path, shape = _stream_net(tmp_path, rng)
    with qblif.compile(path) as net:
        eng = ExactEngine(net.ir)
        with pytest.raises(ValueError, match="expected"):
            eng.run(np.zeros((1, 3)), 4, stream=True, reset="none")
        with pytest.raises(ValueError, match="expected"):
            eng.run(np.zeros((2,) + shape, int), 4, stream=True)     # frames as a stream
        with pytest.raises(ValueError, match="reset="):
            eng.run(np.zeros((1,) + shape, int), 4, reset="often")
        with pytest.raises(ValueError, match="reset_interval"):
            eng.run(np.zeros((1,) + shape, int), 4, reset="netx")
        with pytest.raises(ValueError, match="does not fit"):
            net.run(np.zeros((1, 5) + shape, int), 4, engine="exact", reset="none")


def test_segments_cover_the_timeline_in_order():
    for total, sched in [(10, None), (10, (3, 0)), (10, (3, 1)), (10, (3, 2)), (7, (10, 4)),
                         (12, (4, 5)), (1, (2, 2))]:
        idx = tl.segments(total, sched)
        flat = idx.reshape(-1)
        assert flat[flat >= 0].tolist() == list(range(total))
        for b, row in enumerate(idx.tolist()):      # each starts at 0 or at a reset step
            valid = [t for t in row if t >= 0]
            assert valid == list(range(valid[0], valid[0] + len(valid)))
            assert (b == 0 and valid[0] == 0) or (valid[0] + 1) % sched[0] == sched[1] % sched[0]
            if sched is not None and valid[-1] + 1 < total:     # and runs to the next reset
                assert (valid[-1] + 2) % sched[0] == sched[1] % sched[0]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_in_every_mode_equals_the_oracle(tmp_path):
    """The torch code on CUDA (streams, resets, timelines, ALIF, RF, SDNN, the coverage
    kinds: delays, recurrent graded CUBA, SDNN delays, average; recurrent SDNN and ALIF)."""
    rng = np.random.default_rng(5)
    path, shape = _stream_net(tmp_path, rng, conv=True)
    cases = [(path, None, rng.integers(0, 16, size=(3, 4) + shape), 6, MODES, True)]
    path, shape = _alif_net(tmp_path, rng)
    cases.append((path, None, rng.integers(0, 3, size=(2, 8) + shape), 8, MODES[1:2], True))
    cases.append((_rf_net(tmp_path, rng), 1, (rng.random((1, 12, 6)) < 0.4).astype(int), 12,
                  MODES[1:2], False))
    sd_path, sd_shape = _sdnn_nets(tmp_path)[0]
    cases.append((sd_path, 4, rng.integers(0, 16, size=(2, 3) + tuple(sd_shape)), 4, MODES,
                  False))
    from test_exact_engine_kinds import RANDOM_NETS
    for name, (build, steps) in RANDOM_NETS.items():
        (tmp_path / name).mkdir()
        p = build(tmp_path / name, rng)
        with qblif.compile(p, input_bits=4) as net:
            shape, uv = net.input_shape, not net.ir.graph["stateful"]
        cases.append((p, 4, rng.integers(0, 16, size=(3, steps) + shape), steps, MODES, uv))
    cases.append((_sdnn_rec_net(tmp_path, rng), 4, rng.integers(0, 16, size=(2, 4, 6)), 5,
                  MODES, False))
    path, shape = _alif_rec_net(tmp_path, rng)
    cases.append((path, None, rng.integers(0, 3, size=(2, 6) + shape), 6, MODES[1:2], True))
    for p, bits, x, steps, modes, uv in cases:
        with qblif.compile(p, input_bits=bits) as net:
            eng = ExactEngine(net.ir, device="cuda")
            for m in modes:
                _same(eng.run(x, steps, stream=True, record_uv=uv, **m),
                      forward(net.ir, x, steps, stream=True, record_uv=uv, **m), f"{p} {m}")
                _same(eng.run(x, steps, stream=True, record_uv=uv, timeline=True, **m),
                      simulate(net.ir, x, steps, stream=True, record_uv=uv, **m), f"{p} {m}")


def test_recorded_layers_and_cli_input_through_the_engine(tmp_path, capsys):
    """layers_to_record on the timeline; ``qblif run --input X.npy --engine exact --reset
    none`` prints the oracle's per-sample output sums."""
    from qblif.cli.main import main
    rng = np.random.default_rng(9)
    path, shape = _stream_net(tmp_path, rng)
    stream = rng.integers(0, 16, size=(2, 3) + shape)
    with qblif.compile(path) as net:
        ref = forward(net.ir, stream, 3, stream=True, reset="none", record_uv=True)
        got = net.run(stream, 3, engine="exact", reset="none", layers_to_record=[2],
                      record_uv=True)
        assert set(got) == {2, ("u", 2), ("v", 2)}
        for k in got:
            np.testing.assert_array_equal(got[k], ref[k])
    np.save(tmp_path / "x.npy", stream)
    assert main(["run", str(path), "--input", str(tmp_path / "x.npy"), "--reset", "none",
                 "--engine", "exact"]) == 0
    out = capsys.readouterr().out
    assert "exact engine" in out
    for s in range(2):
        assert f"sample {s}: layer 2 counts {ref[2][s].sum(axis=0).tolist()}" in out
