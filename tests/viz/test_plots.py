"""Plots of runs (``qblif.viz.raster``, ``qblif run --plot``) and ``qblif compare``.

The figures must show the run's own numbers: histogram bars are compared with the recorded
counts, PNGs are decoded and checked for size and content. Lava runs are the shipped digits
model on a few samples.
"""
import os

import numpy as np
import pytest

import qblif as qb
from qblif.exact.oracle import forward
from qblif.viz import raster as viz
from qblif.core.data import load_dataset
from qblif.core.encoding import quantize_intensity

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")
MODEL = os.path.join(ROOT, "netx_models", "digits_qblif_mlp.net")
MIN_VARIANCE = 1e-3        # pixel variance (RGB in [0, 1]) of a PNG that shows something


def decode_png(path):
    """(height, width, pixel variance) of a PNG file, decoded by matplotlib (Pillow)."""
    from matplotlib.image import imread
    with open(path, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    img = imread(str(path))
    return img.shape[0], img.shape[1], float(img[..., :3].var())


def bar_heights(fig, layer):
    """Heights of the histogram bars the figure draws for ``layer`` (tagged gid hist:<layer>)."""
    return [p.get_height() for ax in fig.axes for p in ax.patches
            if p.get_gid() == f"hist:{layer}"]


@pytest.fixture(scope="module")
def oracle_run():
    """Counts of 12 digits test samples from the compiler's numpy oracle (no Lava), the IR."""
    with qb.compile(MODEL) as net:
        x, _ = load_dataset("digits", "test", limit=12)
        frames = quantize_intensity(x, int(net.ir.graph["input_bits"]))
        frames = frames.reshape((len(frames),) + net.input_shape)
        return forward(net.ir, frames, int(net.ir.graph["timesteps"])), net.ir


# ----------------------------------------------------------------------------- viz, any engine

def test_histogram_and_activity_are_the_recorded_counts(oracle_run):
    counts, _ = oracle_run
    fig = viz.plot_burst_histogram(counts, max_burst=4)
    for layer, c in counts.items():
        want = np.bincount(c.ravel(), minlength=5)
        np.testing.assert_array_equal(fig.burst_counts[layer], want)
        assert bar_heights(fig, layer) == want.tolist()          # what is drawn
        assert want.sum() == c.size and want[1:].sum() > 0
    act = viz.plot_activity(counts).activity
    for layer, c in counts.items():
        s, t = c.shape[:2]
        np.testing.assert_allclose(act[layer], c.reshape(s * t, -1).mean(axis=1))
    total = sum(c.sum() for c in counts.values()) / sum(c.size for c in counts.values())
    assert viz.spikes_per_neuron_step(counts) == pytest.approx(total)


@pytest.mark.parametrize("kind", ["raster", "histogram", "activity", "run"])
def test_each_plot_writes_a_png_of_its_size_that_is_not_blank(oracle_run, tmp_path, kind):
    counts, _ = oracle_run
    fig = {"raster": lambda: viz.plot_raster(counts, layer=0, samples=[0, 3, 5]),
           "histogram": lambda: viz.plot_burst_histogram(counts),
           "activity": lambda: viz.plot_activity(counts),
           "run": lambda: viz.plot_run(counts, samples=4)}[kind]()
    path = tmp_path / f"{kind}.png"
    viz.save_png(fig, str(path), dpi=80)
    w, h = fig.get_size_inches() * 80
    height, width, var = decode_png(path)
    assert (width, height) == (round(w), round(h))
    assert var > MIN_VARIANCE


def test_blank_figure_fails_the_variance_check(tmp_path):
    """The non-blank criterion can fail: an empty figure is below the threshold."""
    from matplotlib.figure import Figure
    viz.save_png(Figure(figsize=(3, 2)), str(tmp_path / "blank.png"))
    assert decode_png(tmp_path / "blank.png")[2] < MIN_VARIANCE


def test_raster_shows_the_chosen_samples_and_a_cross_section_of_neurons(oracle_run):
    counts, ir = oracle_run
    from qblif.cli.compare import layer_meta
    names, kmax = layer_meta(ir)
    assert kmax == {0: 4, 1: 4} and names[1] == "1: dense QBLIF 10"
    fig = viz.plot_raster(counts, layer=0, samples=[2, 7], max_burst=kmax, max_neurons=16)
    img = fig.axes[0].images[0].get_array()
    c = counts[0][[2, 7]].reshape(2 * counts[0].shape[1], -1)
    keep = viz.raster_rows(c.sum(axis=0), 16)
    assert len(keep) == 16 and np.all(np.diff(keep) > 0) and np.all(c[:, keep].sum(axis=0) > 0)
    np.testing.assert_array_equal(np.asarray(img), c[:, keep].T)
    assert viz.raster_rows(np.array([0, 3, 0, 1]), 3).tolist() == [0, 1, 3]
    assert "unit spikes" in fig.axes[0].get_title()


def test_graded_layers_have_no_histogram_and_count_events():
    counts = {0: np.array([[[0, -3, 5]]]), 1: np.array([[[0, 1, 2]]])}
    assert list(viz.burst_histogram(counts, {0: None, 1: 2})) == [1]
    act = viz.activity(counts, {0: None, 1: 2})
    assert act[0].tolist() == [2 / 3] and act[1].tolist() == [1.0]


def test_neuron_states_of_a_record_uv_run_are_not_layers(oracle_run):
    counts, _ = oracle_run
    with_uv = {**counts, ("u", 0): -counts[0], ("v", 1): counts[1] * 1000}
    assert viz.plot_run(with_uv).burst_counts.keys() == counts.keys()
    assert viz.activity(with_uv).keys() == counts.keys()


@pytest.mark.parametrize("counts, kwargs, match", [
    ({}, {}, "empty run"),
    ({0: np.zeros((0, 4, 10), np.int32)}, {}, "empty run"),
    ({0: np.zeros((2, 4, 10), np.int32)}, {"layer": 3}, "unknown layer 3"),
    ({0: np.zeros((2, 4, 10), np.int32)}, {"samples": [5]}, "out of range"),
    ({0: np.full((2, 4, 10), 5, np.int32)}, {"max_burst": 4}, "outside 0..K=4"),
    ({0: np.zeros((2, 4, 10), np.float32)}, {}, "integers"),
])
def test_bad_plot_input_is_one_clear_error(counts, kwargs, match):
    with pytest.raises(viz.PlotError, match=match) as e:
        viz.plot_run(counts, **kwargs)
    assert "\n" not in str(e.value)


def test_unwritable_plot_path(oracle_run, tmp_path):
    counts, _ = oracle_run
    fig = viz.plot_activity(counts)
    for bad in (tmp_path / "missing" / "p.png", tmp_path):
        with pytest.raises(viz.PlotError, match="cannot write plot"):
            viz.save_png(fig, str(bad))
    (tmp_path / "old.png").write_bytes(b"old")
    viz.save_png(fig, str(tmp_path / "old.png"))
    assert decode_png(tmp_path / "old.png")[2] > MIN_VARIANCE
    assert sorted(os.listdir(tmp_path)) == ["old.png"]          # no temporary file left


# ----------------------------------------------------------------------------- the commands

@pytest.fixture
def qblif(capsys):
    """``qblif`` in-process: returns (rc, stdout, stderr)."""
    from qblif.cli import main as cli

    def run(*argv):
        capsys.readouterr()
        rc = cli.main([str(a) for a in argv])
        out, err = capsys.readouterr()
        return rc, out, err
    return run


@pytest.fixture
def captured(monkeypatch):
    """Record every ``CompiledNetwork.run`` result and every figure the commands draw."""
    got = {"runs": [], "figs": []}
    run, plot_run, plot_cmp = qb.CompiledNetwork.run, viz.plot_run, viz.plot_comparison

    def spy_run(self, *a, **k):
        got["runs"].append(run(self, *a, **k))
        return got["runs"][-1]

    def spy(fn):
        def wrapped(*a, **k):
            got["figs"].append((a, k, fn(*a, **k)))
            return got["figs"][-1][2]
        return wrapped
    monkeypatch.setattr(qb.CompiledNetwork, "run", spy_run)
    monkeypatch.setattr(viz, "plot_run", spy(plot_run))
    monkeypatch.setattr(viz, "plot_comparison", spy(plot_cmp))
    return got


def one_error_line(err, *words):
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    for w in words:
        assert w in lines[0], (w, lines[0])


def test_run_plot_shows_the_lava_run(qblif, captured, tmp_path):
    path = tmp_path / "run.png"
    rc, out, err = qblif("run", MODEL, "--dataset", "digits", "--samples", 3, "--plot", path,
                         "--plot-layer", 1, "--plot-samples", 2)
    assert rc == 0, err
    assert f"plot: {path}" in out
    (counts,) = captured["runs"]
    (_, kwargs, fig), = captured["figs"]
    assert fig.raster_layer == 1 and kwargs["samples"] == 2
    for layer, c in counts.items():
        want = np.bincount(c.ravel(), minlength=5)
        np.testing.assert_array_equal(fig.burst_counts[layer], want)
        assert bar_heights(fig, layer) == want.tolist()
    height, width, var = decode_png(path)
    assert (width, height) == tuple(round(v) for v in fig.get_size_inches() * viz.DEFAULT_DPI)
    assert var > MIN_VARIANCE


@pytest.mark.parametrize("argv, words", [
    (["--plot", "{tmp}/p.png", "--plot-layer", "7"], ["--plot-layer 7", "unknown layer", "0, 1"]),
    (["--plot", "{tmp}/missing/p.png"], ["cannot write plot", "does not exist"]),
    (["--plot", "{tmp}"], ["cannot write plot", "directory"]),
    (["--plot-layer", "1"], ["need --plot"]),
    (["--plot", "{tmp}/p.png", "--plot-samples", "0"], ["--plot-samples=0"]),
    (["--plot", "{tmp}/p.png", "--samples", "0"], ["--samples=0"]),
])
def test_run_plot_bad_arguments_fail_before_lava(qblif, captured, tmp_path, argv, words):
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    samples = [] if "--samples" in argv else ["--samples", 2]
    rc, _, err = qblif("run", MODEL, "--dataset", "digits", *samples, *argv)
    assert rc != 0
    one_error_line(err, *words)
    assert captured["runs"] == [] and os.listdir(tmp_path) == []


@pytest.fixture(scope="module")
def cuba_model(tmp_path_factory):
    """A CUBA MLP on digits, trained the same way as the shipped QB-LIF one (1 epoch)."""
    from qblif.cli import main as cli
    out = tmp_path_factory.mktemp("cuba") / "digits_cuba_mlp.net"
    assert cli.main(["train", "--dataset", "digits", "--neuron", "cuba", "--arch", "mlp",
                     "--timesteps", "4", "--epochs", "1", "--no-progress", "--out", str(out)]) == 0
    return str(out)


def test_compare_table_and_figure_show_both_runs(qblif, captured, tmp_path, cuba_model):
    path = tmp_path / "cmp.png"
    rc, out, err = qblif("compare", MODEL, cuba_model, "--dataset", "digits", "--samples", 3,
                         "--plot", path)
    assert rc == 0, err
    assert "digits_qblif_mlp.net" in out and "digits_cuba_mlp.net" in out
    assert "QBLIF K=4" in out and "CUBA" in out and "SynOps/sample" in out
    qb_counts, cuba_counts = captured["runs"]
    (args, _, fig), = captured["figs"]
    qb, cuba = args[0]
    for s, counts, k in ((qb, qb_counts, 4), (cuba, cuba_counts, 1)):
        for layer, c in counts.items():
            np.testing.assert_array_equal(s["histogram"][layer],
                                          np.bincount(c.ravel(), minlength=k + 1))
        spikes = sum(c.sum() for c in counts.values()) / sum(c.size for c in counts.values())
        assert s["spikes_per_neuron_step"] == pytest.approx(spikes)
        assert f"{s['accuracy'] * 100:.2f}%" in out
        assert f"{s['synops_per_sample']:,.0f}" in out and s["synops_per_sample"] > 0
    assert len(cuba["histogram"][0]) == 2                     # CUBA: n in {0, 1}
    height, width, var = decode_png(path)
    assert (width, height) == tuple(round(v) for v in fig.get_size_inches() * viz.DEFAULT_DPI)
    assert var > MIN_VARIANCE


FMNIST_MODEL = os.path.join(ROOT, "netx_models", "fmnist_qblif_conv.net")


@pytest.mark.parametrize("argv, words", [
    (["{tmp}/nope.net"], ["nope.net", "does not exist"]),
    ([FMNIST_MODEL], ["digits", "do not fit", "inputShape"]),     # checked before either run
    ([MODEL, "--plot", "{tmp}/missing/c.png"], ["cannot write plot"]),
    ([MODEL, "--samples", "0"], ["--samples=0"]),
])
def test_compare_bad_arguments(qblif, captured, tmp_path, argv, words):
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    rc, _, err = qblif("compare", MODEL, *argv, "--dataset", "digits")
    assert rc != 0
    one_error_line(err, *words)
    assert captured["runs"] == []
