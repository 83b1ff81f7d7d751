"""The NIR front end (docs/nir.md): every supported node compiles and runs in Lava, an
exactly representable network reproduces the float NIR simulation spike for spike, the
quantization report, malformed files (one CompileError, CLI exit 2), and the NetX -> NIR
-> compile round trip (equal on every layer and step)."""
from __future__ import annotations

import numpy as np
import pytest

nir = pytest.importorskip("nir")

import qblif  # noqa: E402
from qblif import CompileError  # noqa: E402
from qblif.exact.oracle import forward  # noqa: E402
from qblif.ir import layers  # noqa: E402
from qblif.export.nir import export_nir  # noqa: E402
from qblif.nir.quantize import headroom, text_report  # noqa: E402
from qblif.nir.simulate import agreement, check, simulate  # noqa: E402

DT = 1e-3
DIGITS = "netx_models/digits_qblif_mlp.net"


def _write(tmp_path, name, nodes, edges, **kw):
    g = nir.NIRGraph(nodes=nodes, edges=edges, type_check=False, **kw)
    path = tmp_path / name
    nir.write(str(path), g)
    return path


def _chain(tmp_path, name, in_shape, body, out_shape):
    """Input -> body nodes (list of (name, node)) -> Output, as a file."""
    nodes = {"in": nir.Input(input_type={"input": np.array(in_shape)})}
    nodes.update(body)
    nodes["out"] = nir.Output(output_type={"output": np.array(out_shape)})
    names = list(nodes)
    return _write(tmp_path, name, nodes, list(zip(names[:-1], names[1:])))


def _lif(n, tau=2 * DT, thr=1.0, **kw):
    shape = (n,) if np.isscalar(n) else n
    return nir.LIF(tau=np.full(shape, tau), r=np.full(shape, tau / DT), v_leak=np.zeros(shape),
                   v_threshold=np.full(shape, thr), **kw)


def _cuba(n, tau_syn=2 * DT, tau_mem=4 * DT, thr=1.0):
    shape = (n,) if np.isscalar(n) else n
    return nir.CubaLIF(tau_syn=np.full(shape, tau_syn), tau_mem=np.full(shape, tau_mem),
                       r=np.full(shape, tau_mem / DT), v_leak=np.zeros(shape),
                       v_threshold=np.full(shape, thr), w_in=np.full(shape, tau_syn / DT))


def _graph_conv(tmp_path, rng):
    """Conv2d, SumPool2d, AvgPool2d, Flatten, Affine, Scale, LIF, IF, CubaLIF, Threshold, LI."""
    body = [
        ("conv", nir.Conv2d(input_shape=(8, 8), weight=rng.normal(0, 0.3, (3, 1, 3, 3)),
                            stride=1, padding=1, dilation=1, groups=1, bias=np.zeros(3))),
        ("lif", _lif((3, 8, 8), thr=0.5)),
        ("sum", nir.SumPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]),
                              padding=np.array([0, 0]))),
        ("if", nir.IF(r=np.full((3, 4, 4), 1 / DT), v_threshold=np.full((3, 4, 4), 1.5))),
        ("avg", nir.AvgPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]),
                              padding=np.array([0, 0]))),
        ("cuba", _cuba((3, 2, 2), thr=0.2)),
        ("flat", nir.Flatten(input_type={"input": np.array([3, 2, 2])}, start_dim=0)),
        ("aff", nir.Affine(weight=rng.normal(0, 0.5, (8, 12)), bias=rng.normal(0, 0.1, 8))),
        ("scale", nir.Scale(scale=np.full(8, 0.5))),
        ("thr", nir.Threshold(threshold=np.full(8, 0.1))),
        ("lin", nir.Linear(weight=rng.normal(0, 0.5, (4, 8)))),
        ("li", nir.LI(tau=np.full(4, 4 * DT), r=np.full(4, 4.0), v_leak=np.zeros(4))),
    ]
    return _chain(tmp_path, "conv.nir", (1, 8, 8), body, (4,))


def _graph_nested(tmp_path, rng):
    """Conv1d + CubaLIF inside a nested NIRGraph, then Flatten, Linear, LIF."""
    sub = nir.NIRGraph(nodes={
        "input": nir.Input(input_type={"input": np.array([2, 10])}),
        "c1": nir.Conv1d(input_shape=10, weight=rng.normal(0, 0.4, (3, 2, 3)), stride=1,
                         padding=0, dilation=1, groups=1, bias=np.zeros(3)),
        "n1": _cuba((3, 8), thr=0.3),
        "output": nir.Output(output_type={"output": np.array([3, 8])})},
        edges=[("input", "c1"), ("c1", "n1"), ("n1", "output")], type_check=False)
    nodes = {"in": nir.Input(input_type={"input": np.array([2, 10])}), "sub": sub,
             "flat": nir.Flatten(input_type={"input": np.array([3, 8])}, start_dim=0),
             "fc": nir.Linear(weight=rng.normal(0, 0.4, (5, 24))), "lif": _lif(5, thr=0.3),
             "out": nir.Output(output_type={"output": np.array([5])})}
    edges = [("in", "sub.input"), ("sub.output", "flat"), ("flat", "fc"), ("fc", "lif"),
             ("lif", "out")]
    return _write(tmp_path, "nested.nir", nodes, edges)


@pytest.mark.parametrize("make", [_graph_conv, _graph_nested])
def test_every_node_compiles_and_runs_in_lava(tmp_path, make):
    rng = np.random.default_rng(1)
    path = make(tmp_path, rng)
    with qblif.compile(path, input_bits=4, nir_options=dict(dt=DT)) as net:
        kinds = [ly.kind for ly in layers(net.ir)]
        frames = rng.integers(0, 16, (2,) + net.input_shape)
        steps = 5
        ro = net.ir.graph["nir_readouts"]
        out = net.run(frames, steps, record_uv=bool(ro))
        oracle = forward(net.ir, frames, steps, record_uv=bool(ro))
        for i in oracle:
            assert np.array_equal(out[i], oracle[i]), i      # Lava == numpy oracle
        agree = check(net, frames, steps, lava_out=out)
    if make is _graph_conv:
        assert kinds == ["conv", "pool", "pool", "flatten", "dense", "dense"]
        assert ro == [5]
    else:
        assert kinds == ["conv", "flatten", "dense"] and net.input_shape == (2, 1, 10)
    assert set(agree) == {ly.index for ly in layers(net.ir) if ly.kind != "flatten"}
    assert all(0.5 <= a <= 1.0 for a in agree.values()), agree
    assert any(out[i].any() for i in out if isinstance(i, int)), "a silent network tests nothing"


def _exact_graph(tmp_path):
    rng = np.random.default_rng(0)
    w1 = rng.integers(-6, 7, (6, 4)) * 2 / 64.0            # on the 8-bit even grid
    w2 = rng.integers(-8, 9, (3, 6)) * 2 / 64.0
    body = [("fc1", nir.Linear(weight=w1)),
            ("if1", nir.IF(r=np.full(6, 1 / DT), v_threshold=np.full(6, 2.0))),
            ("fc2", nir.Linear(weight=w2)),
            # tau_syn = dt: no current memory; tau_mem = 2 dt: v halves (exact for T <= 6)
            ("cuba", nir.CubaLIF(tau_syn=np.full(3, DT), tau_mem=np.full(3, 2 * DT),
                                 r=np.full(3, 2.0), v_leak=np.full(3, 2 / 64),
                                 v_threshold=np.full(3, 0.125), w_in=np.ones(3)))]
    return _chain(tmp_path, "exact.nir", (4,), body, (3,))


def test_exactly_representable_network_reproduces_float_simulation(tmp_path):
    path = _exact_graph(tmp_path)
    rng = np.random.default_rng(5)
    frames = rng.integers(0, 16, (6, 4))
    steps = 6
    with qblif.compile(path, input_bits=4, nir_options=dict(dt=DT)) as net:
        rows = net.ir.graph["nir_quant"]
        assert all(r["exact"] and r["scale"] == 1 for r in rows)
        ref = simulate(path, frames, steps, dt=DT)
        oracle = forward(net.ir, frames, steps)
        lava = net.run(frames, steps)
    for i in ref:
        assert ref[i].sum() > 3                              # both layers spike
        assert np.array_equal(oracle[i], ref[i].astype(np.int32)), i
        assert np.array_equal(lava[i], ref[i].astype(np.int32)), i
    assert agreement(lava, ref) == {0: 1.0, 1: 1.0}


def test_quantization_report_options_and_errors(tmp_path):
    rng = np.random.default_rng(2)
    body = [("fc", nir.Affine(weight=rng.normal(0, 0.3, (5, 4)), bias=np.full(5, 0.01))),
            ("lif", _lif(5, tau=3 * DT, thr=0.7))]
    path = _chain(tmp_path, "q.nir", (4,), body, (5,))
    g8 = qblif.compile(path, input_bits=4, nir_options=dict(dt=DT)).ir
    g3 = qblif.compile(path, input_bits=4, nir_options=dict(dt=DT, weight_bits=3)).ir
    r8, r3 = g8.graph["nir_quant"][0], g3.graph["nir_quant"][0]
    assert not r8["exact"] and 0 < r8["err"]["weight"] < 0.01 < r3["err"]["weight"]
    assert r8["err"]["dv"] == pytest.approx(abs(round(4096 / 3) / 4096 - 1 / 3))
    w3 = layers(g3)[0].weight
    assert np.all(w3 % 64 == 0) and np.abs(w3).max() <= 256     # 3 bits: step 2**6
    ly = layers(g8)[0]
    assert ly.neuron.du == 4095 and ly.neuron.dv == round(4096 / 3)   # LIF: no current
    # the scale maps the largest weight to 254 and the threshold / bias with it
    s = r8["scale"]
    assert r8["limit"] == "range" and np.abs(ly.weight).max() == 254
    assert int(np.asarray(ly.neuron.vth).reshape(-1)[0]) == round(0.7 * 64 * s)
    text = text_report(g8.graph["nir_quant"], DT, 8)
    assert "u room" in text and "lif" in text and "range" in text
    # a coarser dt changes the decays
    g2 = qblif.compile(path, nir_options=dict(dt=2 * DT)).ir
    assert layers(g2)[0].neuron.dv == round(4096 * 2 / 3)
    # 8-bit inputs: the worst case of 255 through the negative weights would overflow v
    # below, which frames held over each sample make harmless (quantize.headroom): the scale
    # stays the most precise, and only a run with held frames is allowed
    with qblif.compile(path, nir_options=dict(dt=DT)) as net:
        r = net.ir.graph["nir_quant"][0]
        assert r["limit"] == "range" and r["held_input"] and r["headroom_v_bits"] >= 0
        assert net.ir.graph["nir_held_input"] == [0]
        ly = layers(net.ir)[0]
        full = headroom("dense", ly.weight, ly.bias, ly.neuron.du, ly.neuron.dv, 255,
                        ly.neuron.vth)
        assert full["headroom_v_bits"] < 0 <= full["headroom_u_bits"]
        frames = np.random.default_rng(0).integers(0, 256, (2, 4))
        assert net.run(frames, 4, engine="exact")[0].shape == (2, 4, 5)
        with pytest.raises(ValueError, match="held over each sample"):
            net.run(frames[:, None].repeat(3, 1), 4, engine="exact")       # a stream
        with pytest.raises(ValueError, match="reset='none'"):
            net.run(frames, 4, engine="exact", reset="none")
    # after a neuron layer (spike counts in: not held), 500 negative weights of 254 overflow
    # v below (3x u): the headroom sets the scale
    w = np.where(np.arange(1000) % 2, 1.0, -1.0) * np.ones((5, 1))
    body2 = [("fc0", nir.Linear(weight=np.eye(1000))), ("lif0", _lif(1000, tau=DT, thr=0.5)),
             ("fc", nir.Linear(weight=w)), ("lif", _lif(5, tau=3 * DT, thr=0.7))]
    r = qblif.compile(_chain(tmp_path, "q2.nir", (1000,), body2, (5,)),
                      nir_options=dict(dt=DT)).ir.graph["nir_quant"][1]
    assert r["limit"] == "headroom" and 0 <= min(r["headroom_u_bits"], r["headroom_v_bits"]) < 0.1
    assert not r["held_input"]


def _big(tmp_path, thr):
    return _chain(tmp_path, f"big{thr}.nir", (2000,), [
        ("fc", nir.Linear(weight=np.ones((2, 2000)))), ("lif", _lif(2, tau=DT, thr=thr))], (2,))


def test_headroom_scale_exact_power_of_two_refusal_and_allow_inexact(tmp_path, capsys):
    from qblif.cli import main as cli
    # 2000 inputs of 3 through weights 1: u fits 24 bits at scale 1/4, still exact
    r = qblif.compile(_big(tmp_path, 1.0), input_bits=2, nir_options=dict(dt=DT)).ir \
        .graph["nir_quant"][0]
    assert r["limit"] == "exact" and r["scale"] == 0.25 and r["headroom_u_bits"] >= 0
    # 8-bit inputs: no scale that keeps the threshold holds u: refused, naming node and bits
    big = _big(tmp_path, 1.0)
    with pytest.raises(CompileError, match=r"NIR node 'lif' \(LIF\): the worst-case u .* by "
                       r"3\.0 bits"):
        qblif.compile(big, nir_options=dict(dt=DT))
    g = qblif.compile(big, nir_options=dict(dt=DT, allow_inexact=True)).ir
    r = g.graph["nir_quant"][0]      # allow_inexact: the most precise scale, not lowered
    assert g.graph["nir_warnings"] and r["limit"] == "exact" and r["scale"] == 1
    assert "most precise scale" in g.graph["nir_warnings"][0]
    assert "may overflow" in text_report(g.graph["nir_quant"], DT, 8)
    assert cli.main(["compile", str(big), "--dt", str(DT)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "'lif'" in err and "3.0 bits" in err
    np.save(tmp_path / "x.npy", np.full((1, 2000), 255))
    run = ["run", str(big), "--input", str(tmp_path / "x.npy"), "--steps", "2", "--dt", str(DT)]
    assert cli.main(run) == 2
    assert cli.main(run + ["--allow-inexact", "--engine", "exact"]) == 0
    assert "warning: NIR node 'lif'" in capsys.readouterr().err


def test_run_input_honours_nir_options_and_check(tmp_path, capsys):
    """``qblif run x.nir --input`` uses --dt / --weight-bits / --input-scale as the
    dataset path does, and ``--check`` reports the agreement per layer."""
    from qblif.cli import main as cli
    path = _chain(tmp_path, "one.nir", (1,), [("fc", nir.Linear(weight=np.ones((1, 1)))),
                                              ("lif", _lif(1, tau=4 * DT, thr=0.9))], (1,))
    np.save(tmp_path / "x.npy", np.ones((1, 1), np.int64))
    base = ["run", str(path), "--input", str(tmp_path / "x.npy"), "--steps", "40",
            "--engine", "exact", "--input-bits", "1"]

    def count(*extra):
        assert cli.main(base + list(extra)) == 0
        out = capsys.readouterr().out
        return int(out.split("counts [")[1].split("]")[0]), out

    fine, _ = count("--dt", str(DT / 2))
    coarse, _ = count("--dt", str(DT))
    scaled, _ = count("--dt", str(DT), "--input-scale", "0.5")
    want = {dt: int(simulate(path, np.ones((1, 1)), 40, dt=dt)[0].sum()) for dt in (DT / 2, DT)}
    assert (fine, coarse) == (want[DT / 2], want[DT]) and fine != coarse
    half = int(simulate(path, np.ones((1, 1)), 40, dt=DT, input_scale=0.5)[0].sum())
    assert scaled == half != coarse
    _, out = count("--dt", str(DT), "--check")
    assert "layer 0 (NIR node 'lif'): 100.00% agreement" in out


# --- malformed and unsupported files ------------------------------------------------------
def _fc_lif(w=None, **lif):
    return {"in": nir.Input(input_type={"input": np.array([4])}),
            "fc": nir.Linear(weight=np.full((3, 4), 0.25) if w is None else w),
            "lif": _lif(3, **lif), "out": nir.Output(output_type={"output": np.array([3])})}


GOOD_EDGES = [("in", "fc"), ("fc", "lif"), ("lif", "out")]


def _bad_cases():
    n = _fc_lif()
    yield "missing node", n, GOOD_EDGES + [("lif", "ghost")], "missing node 'ghost'"
    d = dict(n)
    del d["fc"]
    yield "missing node in chain", d, GOOD_EDGES, "missing node 'fc'"
    d = dict(n, extra=nir.Linear(weight=np.ones((3, 3))))
    yield "dangling node", d, GOOD_EDGES + [("extra", "lif")], "'lif' .* merges 2 inputs"
    yield "dangling edge", n, [("in", "fc"), ("fc", "lif")], "'lif' .*no successor"
    yield "wrong shape", _fc_lif(w=np.ones((3, 5))), GOOD_EDGES, "'fc' .*does not fit"
    yield "NaN weight", _fc_lif(w=np.full((3, 4), np.nan)), GOOD_EDGES, "'fc' .*NaN"
    yield "NaN tau", _fc_lif(tau=np.nan), GOOD_EDGES, "'lif' .*'tau' .*NaN"
    yield "zero threshold", _fc_lif(thr=0.0), GOOD_EDGES, "'lif' .*v_threshold"
    yield "v_reset", _fc_lif(v_reset=np.ones(3)), GOOD_EDGES, "'lif' .*v_reset"
    d = dict(n, lif=nir.I(r=np.ones(3)))
    yield "unsupported type", d, GOOD_EDGES, r"'lif' \(I\): unsupported node type"
    d = dict(n, rec=nir.Linear(weight=np.eye(3)), rec2=nir.Linear(weight=np.eye(3)))
    yield "cycle of two ops", d, GOOD_EDGES + [("lif", "rec"), ("rec", "rec2"),
                                               ("rec2", "lif")], "recurrent subgraph"
    d = {"in": nir.Input(input_type={"input": np.array([1, 4, 4])}),
         "c1": nir.Conv2d(input_shape=(4, 4), weight=np.array([[[[1.0, -1], [1, 1]]]]),
                          stride=1, padding=0, dilation=1, groups=1, bias=np.zeros(1)),
         "c2": nir.Conv2d(input_shape=(3, 3), weight=np.ones((1, 1, 2, 2)), stride=1, padding=1,
                          dilation=1, groups=1, bias=np.zeros(1)),    # padded after a conv
         "lif": _lif((1, 4, 4)), "out": nir.Output(output_type={"output": np.array([1, 4, 4])})}
    yield "two ops that do not fuse", d, [("in", "c1"), ("c1", "c2"), ("c2", "lif"),
                                          ("lif", "out")], "'c2' .*do not fuse.*relay .*mixed-sign"
    d = {"in": n["in"], "lif": n["lif"], "out": n["out"]}
    yield "neuron without synapse", d, [("in", "lif"), ("lif", "out")], "'lif' .*needs a synaptic"


@pytest.mark.parametrize("case", list(_bad_cases()), ids=lambda c: c[0])
def test_malformed_nir_raises_one_compile_error(tmp_path, case):
    _, nodes, edges, pattern = case
    path = _write(tmp_path, "bad.nir", nodes, edges)
    with pytest.raises(CompileError, match=pattern) as exc:
        qblif.compile(path, nir_options=dict(dt=DT))
    assert "\n" not in str(exc.value)


def test_inexact_avgpool_is_a_clear_error(tmp_path):
    body = [("avg", nir.AvgPool2d(kernel_size=np.array([3, 3]), stride=np.array([3, 3]),
                                  padding=np.array([0, 0]))),
            ("if", nir.IF(r=np.full((1, 2, 2), 1 / DT), v_threshold=np.full((1, 2, 2), 1e4)))]
    path = _chain(tmp_path, "avg.nir", (1, 6, 6), body, (1, 2, 2))
    with pytest.raises(CompileError, match=r"NIR node 'avg' \(AvgPool2d\): the average 1/9"):
        qblif.compile(path, nir_options=dict(dt=DT))
    body[1] = ("if", nir.IF(r=np.full((1, 2, 2), 1 / DT), v_threshold=np.full((1, 2, 2), 0.5)))
    ly = layers(qblif.compile(_chain(tmp_path, "avg2.nir", (1, 6, 6), body, (1, 2, 2)),
                                 nir_options=dict(dt=DT)).ir)[0]
    # 1/9 scaled to a grid point below the headroom of 8-bit inputs: exact
    assert ly.kind == "pool" and np.ptp(ly.weight) == 0 and ly.weight.flat[0] % 2 == 0


def test_nested_recurrent_subgraph_equals_the_float_simulation(tmp_path):
    """A nested NIRGraph with lif -> w_rec -> lif (snnTorch's RLeaky shape, an IF here):
    the IR's dense_rec; exact parameters give the float NIR simulation spike for spike."""
    w_rec = np.array([[0, -16, 8], [8, 0, -8], [-8, 16, 0]]) / 64
    sub = nir.NIRGraph(nodes={"input": nir.Input(input_type={"input": np.array([3])}),
                              "lif": nir.IF(r=np.full(3, 1 / DT), v_threshold=np.full(3, 0.5)),
                              "w_rec": nir.Linear(weight=w_rec),
                              "output": nir.Output(output_type={"output": np.array([3])})},
                       edges=[("input", "lif"), ("lif", "w_rec"), ("w_rec", "lif"),
                              ("lif", "output")], type_check=False)
    nodes = _fc_lif(w=np.round(np.random.default_rng(3).normal(0, 0.2, (3, 4)) * 32) / 32)
    nodes["lif"] = sub
    path = _write(tmp_path, "rec.nir", nodes, GOOD_EDGES)
    frames = np.random.default_rng(4).integers(0, 4, (4, 4))
    with qblif.compile(path, input_bits=2, nir_options=dict(dt=DT)) as net:
        assert net.ir.graph["nir_quant"][0]["exact"]
        assert np.array_equal(layers(net.ir)[0].weight_rec, w_rec * 64)
        oracle = forward(net.ir, frames, 6)
        lava = net.run(frames, 6)
    ref = simulate(path, frames, 6, dt=DT)
    assert np.array_equal(oracle[0], ref[0]) and np.array_equal(lava[0], ref[0])
    assert ref[0].sum() > 3


def test_garbage_and_missing_files(tmp_path):
    bad = tmp_path / "garbage.nir"
    bad.write_bytes(b"not hdf5 at all")
    with pytest.raises(CompileError, match="not a readable NIR file"):
        qblif.compile(bad)
    with pytest.raises(CompileError, match="no such file"):
        qblif.compile(tmp_path / "none.nir")
    with pytest.raises(CompileError, match="weight_bits"):
        qblif.compile(_write(tmp_path, "ok.nir", _fc_lif(), GOOD_EDGES),
                         nir_options=dict(weight_bits=9))


def test_cli_exit_2_one_line_and_quant_report(tmp_path, capsys):
    from qblif.cli import main as cli
    path = _write(tmp_path, "bad.nir", _fc_lif(w=np.full((3, 4), np.nan)), GOOD_EDGES)
    assert cli.main(["compile", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "'fc'" in err and "NaN" in err
    good = _write(tmp_path, "good.nir", _fc_lif(), GOOD_EDGES)
    assert cli.main(["compile", str(good), "--dt", str(DT), "--weight-bits", "6"]) == 0
    out = capsys.readouterr().out
    assert "NIR quantization: dt=0.001, 6-bit weights" in out and "neurocore" in out


# --- export and the round trip --------------------------------------------------------------
def test_netx_to_nir_round_trip_equal_on_every_layer_and_step(tmp_path):
    out_path = tmp_path / "digits.nir"
    export_nir(DIGITS, out_path)
    g = nir.read(str(out_path))                               # a valid, type-checked NIR file
    assert [type(g.nodes[k]).__name__ for k in ("syn0", "lif0", "syn1", "lif1")] == \
        ["Linear", "CubaLIF", "Linear", "CubaLIF"]
    ext = g.nodes["lif0"].metadata["qblif"]
    assert ext["kind"] == "QBLIF" and ext["max_burst"] == 4 and ext["reset_mode"] == "subtract"
    rng = np.random.default_rng(0)
    with qblif.compile(DIGITS) as a, qblif.compile(out_path) as b:
        for x, y in zip(layers(a.ir), layers(b.ir)):
            assert (x.kind, x.shape, x.neuron.kind, x.neuron.max_burst, x.neuron.reset_mode,
                    x.neuron.du, x.neuron.dv) == (y.kind, y.shape, y.neuron.kind,
                                                  y.neuron.max_burst, y.neuron.reset_mode,
                                                  y.neuron.du, y.neuron.dv)
            assert np.array_equal(x.weight, y.weight) and np.array_equal(x.neuron.vth,
                                                                        y.neuron.vth)
        assert b.ir.graph["input_bits"] == a.ir.graph["input_bits"] == 4
        steps = a.ir.graph["timesteps"]
        frames = rng.integers(0, 16, (3, 64))
        fa, fb = forward(a.ir, frames, steps), forward(b.ir, frames, steps)
        la, lb = a.run(frames, steps), b.run(frames, steps)
    assert set(fa) == set(fb) == set(la) == set(lb) == {0, 1}
    for i in fa:
        assert np.array_equal(fa[i], fb[i]) and np.array_equal(la[i], lb[i])
        assert np.array_equal(la[i], fa[i])
    assert la[0].max() > 1                                   # bursts survived the trip


def test_round_trip_conv_pool_flatten_without_lava(tmp_path):
    from test_compiler_writer import conv_net, write_net
    rng = np.random.default_rng(4)
    specs, shape = conv_net(rng, k=3)
    src = write_net(tmp_path / "c.net", specs, shape)
    out_path = tmp_path / "c.nir"
    export_nir(src, out_path)
    a, b = qblif.compile(src), qblif.compile(out_path)
    kinds = [ly.kind for ly in layers(a.ir) if ly.kind != "input"]   # NIR has no input layer
    assert kinds == [ly.kind for ly in layers(b.ir)] == ["conv", "pool", "flatten", "dense"]
    frames = rng.integers(0, 2 ** a.ir.graph["input_bits"], (2,) + a.input_shape)
    fa, fb = forward(a.ir, frames, 4), forward(b.ir, frames, 4)
    assert len(fa) == len(fb) == 3
    for x, y in zip(sorted(fa), sorted(fb)):
        assert np.array_equal(fa[x], fb[y])
    assert fa[sorted(fa)[0]].max() > 1


def test_cli_export_nir_and_run_check(tmp_path, capsys):
    from qblif.cli import main as cli
    out_path = tmp_path / "d.nir"
    assert cli.main(["export-nir", DIGITS, str(out_path)]) == 0
    assert out_path.stat().st_size > 1000
    assert cli.main(["run", str(out_path), "--dataset", "digits", "--samples", "3",
                     "--check"]) == 0
    out = capsys.readouterr().out
    assert "accuracy:" in out and out.count("agreement with the float NIR simulation") == 2
    assert cli.main(["export-nir", "nonexistent.net", str(tmp_path / "x.nir")]) == 2


# --- fuzz: any mutation gives a compiled network or one CompileError, nothing else -------
def _fuzz_base():
    rng = np.random.default_rng(7)
    nodes = {"in": nir.Input(input_type={"input": np.array([1, 6, 6])}),
             "conv": nir.Conv2d(input_shape=(6, 6), weight=rng.normal(0, 0.3, (2, 1, 3, 3)),
                                stride=1, padding=1, dilation=1, groups=1, bias=np.zeros(2)),
             "lif": _lif((2, 6, 6), thr=0.5),
             "pool": nir.SumPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]),
                                   padding=np.array([0, 0])),
             "cuba": _cuba((2, 3, 3)),
             "flat": nir.Flatten(input_type={"input": np.array([2, 3, 3])}, start_dim=0),
             "fc": nir.Affine(weight=rng.normal(0, 0.3, (4, 18)), bias=np.zeros(4)),
             "if": nir.IF(r=np.full(4, 1 / DT), v_threshold=np.ones(4)),
             "out": nir.Output(output_type={"output": np.array([4])})}
    names = list(nodes)
    return nodes, list(zip(names[:-1], names[1:]))


BAD_VALUES = [np.nan, -1.0, 0.0, 1e30, np.inf, -np.inf, np.array([]), np.ones(7),
              np.ones((2, 3, 4, 5, 6)), "x", None, 3, np.array([1, 2]), np.full((2, 6, 6), -2.0)]


def _mutations():
    from hypothesis import strategies as st
    nodes, _ = _fuzz_base()
    attrs = [(n, a) for n, v in nodes.items() for a in vars(v)
             if a not in ("metadata", "output_type")]
    return st.tuples(st.sampled_from(attrs), st.sampled_from(range(len(BAD_VALUES))),
                     st.sampled_from(["none", "drop", "extra", "swap"]))


def test_fuzzed_graphs_give_only_compile_errors():
    from hypothesis import HealthCheck, given, settings
    from qblif.ir.from_nir import graph_to_ir
    from qblif.passes import run_passes

    @settings(max_examples=150, deadline=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(_mutations())
    def run(m):
        (name, attr), vi, edit = m
        nodes, edges = _fuzz_base()
        setattr(nodes[name], attr, BAD_VALUES[vi])
        if edit == "drop":
            edges = edges[:3] + edges[4:]
        elif edit == "extra":
            edges = edges + [("fc", "ghost")]
        elif edit == "swap":
            edges = [(b, a) if i == 2 else (a, b) for i, (a, b) in enumerate(edges)]
        try:
            g = nir.NIRGraph(nodes=nodes, edges=edges, type_check=False)
        except Exception:     # nir itself refuses to build it: no file can hold it
            return
        try:
            ir = graph_to_ir(g, dt=DT)
            ir.graph.setdefault("input_bits", 8)
            ir.graph["encoding"] = "graded"
            run_passes(ir)
        except CompileError as exc:
            assert "\n" not in str(exc)
    run()


def test_input_scale_folds_into_the_first_layer(tmp_path):
    rng = np.random.default_rng(8)
    w = rng.normal(0, 0.3, (5, 4))
    a = _chain(tmp_path, "a.nir", (4,), [("fc", nir.Linear(weight=w)), ("lif", _lif(5))], (5,))
    b = _chain(tmp_path, "b.nir", (4,), [("fc", nir.Linear(weight=w * 15)), ("lif", _lif(5))],
               (5,))
    ga = qblif.compile(a, input_bits=4, nir_options=dict(dt=DT)).ir
    gb = qblif.compile(b, input_bits=4, nir_options=dict(dt=DT, input_scale=1 / 15)).ir
    assert np.array_equal(layers(ga)[0].weight, layers(gb)[0].weight)
    assert gb.graph["nir_input_scale"] == pytest.approx(1 / 15)
    frames = rng.integers(0, 16, (3, 4))
    sa = simulate(a, frames, 5, dt=DT)
    sb = simulate(b, frames, 5, dt=DT, input_scale=1 / 15)
    assert np.array_equal(sa[0], sb[0]) and sa[0].any()
    with pytest.raises(CompileError, match="input_scale"):
        qblif.compile(b, nir_options=dict(input_scale=-1.0))


# --- linear ops with no neuron between: fused into one synapse ------------------------------
def _conv(c_in, c_out, k, hw, pad=0, rng=None, grid=False):
    w = rng.normal(0, 0.4, (c_out, c_in, k, k))
    if grid:
        w = np.round(w * 32) / 32                    # 8-bit even grid: exact
    return nir.Conv2d(input_shape=hw, weight=w, stride=1, padding=pad, dilation=1, groups=1,
                      bias=np.zeros(c_out))


def _pool(k=2, kind=nir.SumPool2d):
    return kind(kernel_size=np.array([k, k]), stride=np.array([k, k]), padding=np.array([0, 0]))


def _torch_ops(body, x):
    """The float reference of a chain of NIR linear ops, in torch (independent of ours)."""
    import torch
    import torch.nn.functional as F
    y = torch.tensor(x)
    for _, n in body:
        if isinstance(n, nir.Conv2d):
            y = F.conv2d(y, torch.tensor(n.weight), torch.tensor(n.bias), n.stride, n.padding)
        elif isinstance(n, nir.SumPool2d):
            y = F.avg_pool2d(y, tuple(n.kernel_size)) * float(np.prod(n.kernel_size))
        elif isinstance(n, nir.AvgPool2d):
            y = F.avg_pool2d(y, tuple(n.kernel_size))
        elif isinstance(n, nir.Flatten):
            y = y.reshape(y.shape[0], -1)
        else:
            y = y @ torch.tensor(n.weight).T + torch.tensor(getattr(n, "bias", 0.0))
    return y.numpy()


def _flat(shape):
    return nir.Flatten(input_type={"input": np.array(shape)})


FUSE_CASES = {
    "sumpool-conv(pad 1)": lambda r: [("p", _pool()), ("c", _conv(2, 3, 3, (4, 4), 1, r))],
    "avgpool-conv": lambda r: [("p", _pool(2, nir.AvgPool2d)),
                               ("c", _conv(2, 3, 3, (4, 4), 0, r))],
    "conv-conv": lambda r: [("c1", _conv(2, 3, 3, (8, 8), 1, r)),
                            ("c2", _conv(3, 2, 3, (8, 8), 0, r))],
    "conv-sumpool-conv": lambda r: [("c1", _conv(2, 3, 3, (8, 8), 1, r)), ("p", _pool()),
                                    ("c2", _conv(3, 2, 3, (4, 4), 0, r))],
    "conv-flatten-affine": lambda r: [("c", _conv(2, 3, 3, (8, 8), 0, r)), ("f", _flat([3, 6, 6])),
                                      ("a", nir.Affine(weight=r.normal(0, 0.3, (4, 108)),
                                                       bias=r.normal(0, 0.1, 4)))],
    "sumpool-flatten-linear": lambda r: [("p", _pool()), ("f", _flat([2, 4, 4])),
                                         ("l", nir.Linear(weight=r.normal(0, 0.3, (4, 32))))],
}


@pytest.mark.parametrize("case", list(FUSE_CASES))
def test_linear_ops_without_neuron_fuse_into_one_synapse(case):
    from qblif.nir.graph import stages
    from qblif.nir.linear import synapse
    rng = np.random.default_rng(11)
    body = FUSE_CASES[case](rng)
    x = rng.normal(0, 1, (3, 2, 8, 8))
    want = _torch_ops(body, x)
    n_out = want.shape[1:]
    nodes = {"in": nir.Input(input_type={"input": np.array([2, 8, 8])}), **dict(body),
             "if": nir.IF(r=np.full(n_out, 1 / DT), v_threshold=np.ones(n_out)),
             "out": nir.Output(output_type={"output": np.array(n_out)})}
    names = list(nodes)
    g = nir.NIRGraph(nodes=nodes, edges=list(zip(names[:-1], names[1:])), type_check=False)
    _, sts = stages(g)
    st = sts[-1]
    assert len([s for s in sts if s.kind != "flatten"]) == 1 and st.notes
    got = synapse(st, x.reshape((3,) + tuple(st.in_shape)))
    np.testing.assert_allclose(got.reshape(want.shape), want, atol=1e-9)


def test_sinabs_style_cnn_pooling_into_conv_compiles_and_runs_exactly(tmp_path):
    """Conv2d-IF-SumPool2d-Conv2d-IF-Flatten-Affine-IF (Sinabs' N-MNIST shape, built with
    nir): the pooling fuses into the next conv (exact at 8 bits), Lava = engine = oracle."""
    rng = np.random.default_rng(12)
    body = [("conv1", _conv(1, 4, 3, (8, 8), 1, rng, grid=True)),
            ("iaf1", nir.IF(r=np.full((4, 8, 8), 1 / DT), v_threshold=np.full((4, 8, 8), 0.5))),
            ("pool1", _pool()),
            ("conv2", _conv(4, 4, 3, (4, 4), 1, rng, grid=True)),
            ("iaf2", nir.IF(r=np.full((4, 4, 4), 1 / DT), v_threshold=np.full((4, 4, 4), 1.0))),
            ("flat", nir.Flatten(input_type={"input": np.array([4, 4, 4])})),
            ("fc", nir.Affine(weight=np.round(rng.normal(0, 0.3, (5, 64)) * 32) / 32,
                              bias=np.zeros(5))),
            ("iaf3", nir.IF(r=np.full(5, 1 / DT), v_threshold=np.ones(5)))]
    path = _chain(tmp_path, "sinabs.nir", (1, 8, 8), body, (5,))
    with qblif.compile(path, input_bits=2, nir_options=dict(dt=DT)) as net:
        assert [ly.kind for ly in layers(net.ir)] == ["conv", "conv", "flatten", "dense"]
        rows = net.ir.graph["nir_quant"]
        assert rows[1]["exact"] and "'pool1' -> Conv2d 'conv2': fused" in rows[1]["fused"][0]
        assert layers(net.ir)[1].stride == (2, 2) and layers(net.ir)[1].kernel == (6, 6)
        frames = rng.integers(0, 4, (3,) + net.input_shape)
        steps = 6
        lava = net.run(frames, steps)
        eng = net.run(frames, steps, engine="exact")
        oracle = forward(net.ir, frames, steps)
        ref = simulate(path, frames, steps, dt=DT)
    for i in oracle:
        assert np.array_equal(lava[i], oracle[i]) and np.array_equal(eng[i], oracle[i]), i
    assert all(np.array_equal(oracle[i], ref[i]) for i in ref)     # exact: = float NIR
    assert oracle[3].any()
