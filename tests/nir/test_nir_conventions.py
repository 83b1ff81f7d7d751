"""NIR conventions beyond the plain chain (docs/nir.md, "Every convention"): relay layers
between linear ops that do not fuse exactly, each exact against the float NIR simulation,
our oracle, the exact engine and Lava (0 mismatches)."""
from __future__ import annotations

import numpy as np
import pytest

nir = pytest.importorskip("nir")

import qblif  # noqa: E402
from qblif import CompileError  # noqa: E402
from qblif.exact.oracle import forward  # noqa: E402
from qblif.ir import layers  # noqa: E402
from qblif.nir.quantize import text_report  # noqa: E402
from qblif.nir.simulate import simulate  # noqa: E402

DT = 1e-3


def _chain(tmp_path, name, in_shape, body, out_shape):
    nodes = {"in": nir.Input(input_type={"input": np.array(in_shape)})}
    nodes.update(body)
    nodes["out"] = nir.Output(output_type={"output": np.array(out_shape)})
    names = list(nodes)
    g = nir.NIRGraph(nodes=nodes, edges=list(zip(names[:-1], names[1:])), type_check=False)
    path = tmp_path / name
    nir.write(str(path), g)
    return path


def _if(shape, thr=1.0):
    return nir.IF(r=np.full(shape, 1 / DT), v_threshold=np.full(shape, thr))


def _grid(rng, shape, scale=0.3):
    return np.round(rng.normal(0, scale, shape) * 32) / 32      # 8-bit even grid: exact


def _conv(w, hw, pad):
    return nir.Conv2d(input_shape=hw, weight=w, stride=1, padding=pad, dilation=1, groups=1,
                      bias=np.zeros(w.shape[0]))


def _run_all(path, frames, steps, **opts):
    """(net rows, layer kinds, {layer: oracle}, lava, engine, float NIR simulation)."""
    with qblif.compile(path, nir_options=dict(dt=DT), **opts) as net:
        rows = net.ir.graph["nir_quant"]
        kinds = [(ly.kind, ly.neuron.kind if ly.neuron else None) for ly in layers(net.ir)]
        relays = net.ir.graph["nir_relays"]
        report = text_report(rows, DT, 8)
        lava = net.run(frames, steps)
        eng = net.run(frames, steps, engine="exact")
        oracle = forward(net.ir, frames, steps)
    ref = simulate(path, frames, steps, dt=DT)
    return rows, kinds, relays, report, oracle, lava, eng, ref


def _assert_exact(oracle, lava, eng, ref, relays):
    for i in oracle:
        assert np.array_equal(lava[i], oracle[i]), i
        assert np.array_equal(eng[i], oracle[i]), i
    for i in ref:
        if i not in relays:       # a relay sends c * y (c: its integer scale): compare > 0
            assert np.array_equal(oracle[i], ref[i].astype(oracle[i].dtype)), i
        else:
            assert np.array_equal(oracle[i] > 0, ref[i] > 0), i


def test_pooling_into_padded_conv_goes_through_an_exact_relay(tmp_path):
    """SumPool2d (2x2, stride 1: does not tile its input) -> padded Conv2d: the zeros of the
    padding are not zeros of the pooled map, so the two cannot fuse; a relay layer carries
    the pooled sums (0..4) as burst counts, and the network equals the float NIR graph."""
    rng = np.random.default_rng(3)
    body = [("conv1", _conv(_grid(rng, (2, 1, 3, 3)), (6, 6), 1)),
            ("if1", _if((2, 6, 6), 0.5)),
            ("pool", nir.SumPool2d(kernel_size=np.array([2, 2]), stride=np.array([1, 1]),
                                   padding=np.array([0, 0]))),
            ("conv2", _conv(_grid(rng, (3, 2, 3, 3)), (5, 5), 1)),
            ("if2", _if((3, 5, 5), 1.0))]
    path = _chain(tmp_path, "relay_pool.nir", (1, 6, 6), body, (3, 5, 5))
    frames = rng.integers(0, 4, (4, 1, 6, 6))
    rows, kinds, relays, report, oracle, lava, eng, ref = _run_all(path, frames, 6,
                                                                   input_bits=2)
    assert kinds == [("conv", "CUBA"), ("pool", "QBLIF"), ("conv", "CUBA")]
    assert relays == [1]
    assert rows[1]["type"] == "relay" and rows[1]["payload_bits"] == 3      # counts 0..4
    note = rows[2]["fused"][0]
    assert "relay layer 'pool'" in note and "do not fuse" in note
    assert "relay" in report and all(r["exact"] for r in rows)
    _assert_exact(oracle, lava, eng, ref, relays)
    assert oracle[1].max() >= 2 and oracle[2].any()       # graded counts, and spikes after


def test_dense_chain_whose_fusion_needs_more_bits_is_relayed(tmp_path):
    """Linear (non-negative, on the integer grid) -> Linear (8-bit): fused, ``W2 @ W1`` needs
    more than 8 bits; apart, each is exact: the relay is chosen and the report says why."""
    rng = np.random.default_rng(4)
    w1 = rng.integers(0, 4, (6, 5)) / 8.0                   # 2-bit non-negative steps
    w2 = _grid(rng, (4, 6), 0.5)
    body = [("fc0", nir.Linear(weight=_grid(rng, (5, 8)))), ("if0", _if(5, 0.5)),
            ("w1", nir.Linear(weight=w1)), ("w2", nir.Linear(weight=w2)),
            ("if2", _if(4, 0.25))]
    path = _chain(tmp_path, "relay_dense.nir", (8,), body, (4,))
    frames = rng.integers(0, 4, (5, 8))
    rows, kinds, relays, report, oracle, lava, eng, ref = _run_all(path, frames, 6,
                                                                   input_bits=2)
    assert kinds == [("dense", "CUBA"), ("dense", "QBLIF"), ("dense", "CUBA")]
    assert "fusing them would need more than 8 weight bits" in rows[2]["fused"][0]
    assert rows[1]["scale"] == 8.0                           # the relay sends 8 * (W1 x)
    _assert_exact(oracle, lava, eng, ref, relays)
    assert oracle[2].any()


def test_exact_fusion_is_kept_and_says_so(tmp_path):
    """SumPool2d tiling its input -> Conv2d: the composed kernel is exact at 8 bits, so it
    fuses (no relay), and the note gives the bits."""
    from qblif.nir.graph import stages
    rng = np.random.default_rng(5)
    nodes = {"in": nir.Input(input_type={"input": np.array([1, 4, 4])}),
             "pool": nir.SumPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]),
                                   padding=np.array([0, 0])),
             "conv": _conv(_grid(rng, (2, 1, 1, 1)), (2, 2), 0), "if": _if((2, 2, 2)),
             "out": nir.Output(output_type={"output": np.array([2, 2, 2])})}
    names = list(nodes)
    g = nir.NIRGraph(nodes=nodes, edges=list(zip(names[:-1], names[1:])), type_check=False)
    _, sts = stages(g)
    assert len(sts) == 1 and not sts[0].relay
    assert "fused, not relayed: the composed weights are exact at" in sts[0].notes[0]


def test_relay_payload_over_the_burst_width_is_one_error_naming_the_node(tmp_path):
    rng = np.random.default_rng(6)
    body = [("pool", nir.SumPool2d(kernel_size=np.array([2, 2]), stride=np.array([1, 1]),
                                   padding=np.array([0, 0]))),
            ("conv", _conv(_grid(rng, (2, 1, 3, 3)), (3, 3), 1)), ("if", _if((2, 3, 3)))]
    path = _chain(tmp_path, "relay_big.nir", (1, 4, 4), body, (2, 3, 3))
    with pytest.raises(CompileError, match=r"'pool' \(SumPool2d\): a relay layer after it "
                       r"would carry values up to 1020 .* need 10 bits: a graded burst spike "
                       r"carries 8"):
        qblif.compile(path, input_bits=8, nir_options=dict(dt=DT))
    with qblif.compile(path, input_bits=4, nir_options=dict(dt=DT)) as net:   # 4 * 15 = 60
        assert net.ir.graph["nir_relays"] == [0]


# --- an Affine bias into a CubaLIF: an always-on source ------------------------------------
def _cuba_exact(n, thr):
    """tau_syn = tau_mem = 2 dt: u and v halve each step (exact in integers for T <= 6, as
    u and v are multiples of 64), w_in = r = 2: input gain 1."""
    return nir.CubaLIF(tau_syn=np.full(n, 2 * DT), tau_mem=np.full(n, 2 * DT),
                       r=np.full(n, 2.0), v_leak=np.zeros(n), v_threshold=np.full(n, thr),
                       w_in=np.full(n, 2.0))


def test_affine_bias_into_cubalif_runs_through_an_always_on_source(tmp_path):
    """Affine (bias) -> CubaLIF twice (the first fed by the frames, the second by spikes):
    NIR adds the bias to the synaptic current from the first step; each bias becomes a
    weight column fed by an always-on neuron of a relay layer, and the network equals the
    float NIR simulation, the oracle, the exact engine and Lava on every layer and step."""
    rng = np.random.default_rng(7)
    body = [("fc1", nir.Affine(weight=_grid(rng, (5, 6), 0.1), bias=_grid(rng, 5, 0.2))),
            ("cuba1", _cuba_exact(5, 0.25)),
            ("fc2", nir.Affine(weight=_grid(rng, (3, 5), 0.3), bias=np.array([0.25, -0.5, 0.5]))),
            ("cuba2", _cuba_exact(3, 0.5))]
    path = _chain(tmp_path, "cuba_bias.nir", (6,), body, (3,))
    frames = rng.integers(0, 4, (5, 6))
    rows, kinds, relays, report, oracle, lava, eng, ref = _run_all(path, frames, 6,
                                                                   input_bits=2)
    assert kinds == [("dense", "QBLIF"), ("dense", "CUBA"), ("dense", "QBLIF"),
                     ("dense", "CUBA")]
    assert relays == [0, 2]
    assert all(r["exact"] for r in rows)
    assert any("always-on neuron" in note for note in rows[1]["fused"])
    _assert_exact(oracle, lava, eng, ref, relays)
    assert np.all(oracle[0][:, :, -1] == 1)          # the source: 1 every step, from step 1
    assert oracle[1].any() and oracle[3].any()


def test_bias_alone_drives_the_current_from_the_first_step(tmp_path):
    """No weights, only a bias b into a CubaLIF (tau_syn = tau_mem = 2 dt, gain 1): NIR's
    current is b/2, 3b/4, ... and v crosses theta at the step the float simulation says;
    the compiled network spikes at the same steps."""
    body = [("fc1", nir.Affine(weight=np.zeros((2, 3)), bias=np.array([0.5, 1.0]))),
            ("cuba1", _cuba_exact(2, 0.75))]
    path = _chain(tmp_path, "bias_only.nir", (3,), body, (2,))
    frames = np.zeros((2, 3), np.int64)
    with qblif.compile(path, input_bits=2, nir_options=dict(dt=DT)) as net:
        lava = net.run(frames, 6)
    ref = simulate(path, frames, 6, dt=DT)
    assert np.array_equal(lava[1], ref[1].astype(lava[1].dtype))
    # v: 0.25, 0.5625, 0.84 (> 0.75: spike, reset), ...: neuron 1 earlier than neuron 0
    first = [int(np.argmax(ref[1][0, :, j])) for j in range(2)]
    assert first[1] < first[0] and ref[1][0].sum() >= 2


def test_conv_bias_into_cubalif_is_refused_with_the_reason(tmp_path):
    rng = np.random.default_rng(8)
    body = [("conv", nir.Conv2d(input_shape=(4, 4), weight=_grid(rng, (2, 1, 3, 3)), stride=1,
                                padding=1, dilation=1, groups=1, bias=np.array([0.5, 0.25]))),
            ("cuba", _cuba_exact((2, 4, 4), 0.5))]
    path = _chain(tmp_path, "conv_bias.nir", (1, 4, 4), body, (2, 4, 4))
    with pytest.raises(CompileError, match=r"'cuba' \(CubaLIF\): the bias of 'conv' \(conv\) "
                       r"feeds the synaptic current.*a conv's cannot"):
        qblif.compile(path, input_bits=2, nir_options=dict(dt=DT))


# --- NIR Delay onto axonal delays ------------------------------------------------------------
def test_delay_nodes_become_axonal_delays_exactly(tmp_path):
    """Linear -> Delay (per output neuron, 0..3 steps) -> IF, and IF -> Delay (2 steps, every
    input) -> Conv2d -> IF: NIR's ``y(t) = x(t - delay)`` as the IR's axonal delays; equal to
    the float NIR simulation, the oracle, the engine and Lava on every layer and step (the
    delay lines forget at each sample's start, as NIR's states)."""
    rng = np.random.default_rng(9)
    d1 = np.array([0, 1, 2, 3, 1, 0, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3]) * DT
    body = [("fc", nir.Linear(weight=_grid(rng, (16, 6), 0.3))),
            ("d1", nir.Delay(delay=d1)),
            ("if1", _if(16, 0.5)),
            ("d2", nir.Delay(delay=np.full(16, 2 * DT, np.float32))),     # float32 seconds
            ("fc2", nir.Linear(weight=_grid(rng, (4, 16), 0.4))),
            ("if2", _if(4, 0.5))]
    path = _chain(tmp_path, "delay.nir", (6,), body, (4,))
    frames = rng.integers(0, 4, (5, 6))
    rows, kinds, relays, report, oracle, lava, eng, ref = _run_all(path, frames, 8,
                                                                   input_bits=2)
    _assert_exact(oracle, lava, eng, ref, relays)
    with qblif.compile(path, input_bits=2, nir_options=dict(dt=DT)) as net:
        d = [ly.delay for ly in layers(net.ir)]
    assert np.array_equal(d[0][:, 0], np.round(d1 / DT)) and np.all(d[1] == 2)
    # the delays matter: the first spikes of layer 0 come no earlier than their delay
    fired = oracle[0].reshape(5, 8, 16).any(0)
    first = np.argmax(fired, axis=0)
    assert oracle[1].any() and fired.any(0).sum() >= 12
    assert np.all((first >= np.round(d1 / DT)) | ~fired.any(0))
    assert np.any(first[fired.any(0)] == np.round(d1 / DT)[fired.any(0)])


def test_delay_into_a_conv_is_exact(tmp_path):
    rng = np.random.default_rng(10)
    body = [("conv1", _conv(_grid(rng, (2, 1, 3, 3)), (5, 5), 1)), ("if1", _if((2, 5, 5), 0.5)),
            ("d", nir.Delay(delay=np.full((2, 5, 5), 3 * DT))),
            ("conv2", _conv(_grid(rng, (2, 2, 3, 3)), (5, 5), 0)), ("if2", _if((2, 3, 3), 0.5))]
    path = _chain(tmp_path, "delay_conv.nir", (1, 5, 5), body, (2, 3, 3))
    frames = rng.integers(0, 4, (3, 1, 5, 5))
    *_, oracle, lava, eng, ref = _run_all(path, frames, 7, input_bits=2)
    _assert_exact(oracle, lava, eng, ref, [])
    assert oracle[1].any() and not oracle[1][:, :3].any()      # nothing before step 3


@pytest.mark.parametrize("delay, pattern", [
    (np.full(4, 1.5 * DT), r"'d' \(Delay\): delay 0.0015 s is 1.5 steps of dt=0.001: not an "
                           r"integer number of steps"),
    (np.full(4, 63 * DT), r"'d' \(Delay\): delays of 63..63 steps .* out of Loihi's axonal "
                          r"delay range \[0, 62\]"),
])
def test_delay_that_is_no_whole_number_of_steps_is_one_error(tmp_path, delay, pattern):
    body = [("fc", nir.Linear(weight=np.ones((4, 3)))), ("d", nir.Delay(delay=delay)),
            ("if", _if(4))]
    path = _chain(tmp_path, "bad_delay.nir", (3,), body, (4,))
    with pytest.raises(CompileError, match=pattern):
        qblif.compile(path, input_bits=2, nir_options=dict(dt=DT))


def test_per_input_delays_that_differ_are_refused(tmp_path):
    body = [("fc", nir.Linear(weight=np.ones((4, 3)))), ("if", _if(4)),
            ("d", nir.Delay(delay=np.array([0, 1, 2, 3]) * DT)),
            ("fc2", nir.Linear(weight=np.ones((2, 4)))), ("if2", _if(2))]
    path = _chain(tmp_path, "in_delay.nir", (3,), body, (2,))
    with pytest.raises(CompileError, match=r"'d' \(Delay\): per-input delays that differ"):
        qblif.compile(path, input_bits=2, nir_options=dict(dt=DT))


# --- v_reset != 0: the voltage frame shifted by v_reset, a first-step correction -------------
def _with_reset(node, v_reset):
    node.v_reset = np.full(np.shape(node.v_threshold), v_reset)
    return node


@pytest.mark.parametrize("kind", ["IF", "LIF", "CubaLIF"])
def test_v_reset_nonzero_runs_exactly_in_the_shifted_frame(tmp_path, kind):
    """A hidden layer with ``v_reset != 0`` (IF: -0.25; LIF, tau = 2 dt: 0.25; CubaLIF,
    tau_syn = tau_mem = 2 dt, with a bias: 0.25): NIR's ``v = v_reset`` after a spike and
    ``v = 0`` at the start; compiled in the frame ``v - v_reset`` with a first-step
    correction, it equals the float NIR simulation (which runs NIR's own v_reset), the oracle,
    the engine and Lava on every layer and step, over several samples."""
    rng = np.random.default_rng(13)
    if kind == "IF":
        hidden, reset = _if(8, 0.75), -0.25
    elif kind == "LIF":
        hidden = nir.LIF(tau=np.full(8, 2 * DT), r=np.full(8, 2.0), v_leak=np.zeros(8),
                         v_threshold=np.full(8, 0.5))
        reset = 0.25
    else:
        hidden, reset = _cuba_exact(8, 0.5), 0.25
    op = nir.Affine(weight=_grid(rng, (8, 6), 0.15), bias=np.full(8, 0.0625)) \
        if kind == "CubaLIF" else nir.Linear(weight=_grid(rng, (8, 6), 0.15))
    body = [("fc1", op), ("h", _with_reset(hidden, reset)),
            ("fc2", nir.Linear(weight=_grid(rng, (3, 8), 0.4))), ("o", _if(3, 0.5))]
    path = _chain(tmp_path, f"vreset_{kind}.nir", (6,), body, (3,))
    frames = rng.integers(0, 4, (6, 6))
    rows, kinds, relays, report, oracle, lava, eng, ref = _run_all(path, frames, 6,
                                                                   input_bits=2)
    assert relays == [0, 1]                    # the always-on source and its delayed copies
    assert all(r["exact"] for r in rows), report
    assert any("v_reset != 0" in note for note in rows[2]["fused"])
    _assert_exact(oracle, lava, eng, ref, relays)
    h = ref[2]
    assert h.sum() >= 10 and oracle[3].any()
    # the reset value matters: the same file with v_reset = 0 spikes differently
    body[1] = ("h", _with_reset(hidden, 0.0))
    plain = simulate(_chain(tmp_path, "zero.nir", (6,), body, (3,)), frames, 6, dt=DT)
    assert not np.array_equal(plain[0], h)


def test_v_reset_into_a_conv_is_refused_with_the_reason(tmp_path):
    rng = np.random.default_rng(14)
    body = [("conv", _conv(_grid(rng, (2, 1, 3, 3)), (4, 4), 1)),
            ("h", _with_reset(_if((2, 4, 4)), 0.5))]
    path = _chain(tmp_path, "vreset_conv.nir", (1, 4, 4), body, (2, 4, 4))
    with pytest.raises(CompileError, match=r"'h' \(IF\): v_reset != 0 is mapped by shifting "
                       r"the voltage .*dense ops only"):
        qblif.compile(path, input_bits=2, nir_options=dict(dt=DT))
