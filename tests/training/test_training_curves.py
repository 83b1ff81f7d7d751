"""Training curves (``NAME.png`` beside the card): a PNG of the expected size that is not
blank, drawn from the run's history (loss, validation accuracy, spikes, thresholds)."""
from __future__ import annotations

import io

import numpy as np
import pytest

pytest.importorskip("matplotlib")
from PIL import Image  # noqa: E402

from qblif.training.curves import DPI, FIG_SIZE, curves_figure, curves_png  # noqa: E402

SIZE = (int(FIG_SIZE[0] * DPI), int(FIG_SIZE[1] * DPI))


def _result(epochs=4, spikes=True):
    return {"file": "m.net", "neuron": "qblif", "arch": "mlp", "dataset": "digits",
            "test_accuracy": 0.9,
            "history": [{"epoch": e, "train_loss": 2.0 / e, "val_accuracy": 0.5 + 0.1 * e,
                         "val_spikes_per_neuron_step": 0.1 * e if spikes else None,
                         "thresholds": {"0": 2.0 + 0.1 * e, "1": 2.0 - 0.1 * e} if spikes else {},
                         "lr": 1e-3, "samples": 10, "seconds": 1.0}
                        for e in range(1, epochs + 1)]}


@pytest.mark.parametrize("spikes", [True, False])
def test_png_decodes_has_the_size_and_is_not_blank(spikes):
    png = curves_png(_result(spikes=spikes))
    img = Image.open(io.BytesIO(png))
    img.load()
    assert img.format == "PNG" and img.size == SIZE
    px = np.asarray(img.convert("L"), dtype=np.float64)
    assert px.std() > 10                      # lines, text and axes, not a blank canvas


def test_the_panels_plot_the_history():
    fig = curves_figure(_result())
    (loss, acc), (spk, th) = np.asarray(fig.axes).reshape(2, 2)
    assert list(loss.lines[0].get_ydata()) == [2.0, 1.0, 2.0 / 3, 0.5]
    assert list(acc.lines[0].get_ydata()) == pytest.approx([60, 70, 80, 90])
    assert list(spk.lines[0].get_ydata()) == pytest.approx([0.1, 0.2, 0.3, 0.4])
    assert len(th.lines) == 2 and list(th.lines[1].get_ydata()) == pytest.approx([1.9, 1.8, 1.7, 1.6])


def test_a_trained_run_writes_its_curves(tmp_path):
    torch = pytest.importorskip("torch")  # noqa: F841
    from qblif.training import train as tr
    cfg = tr.TrainConfig(dataset="digits", timesteps=2, epochs=2, limit=64, val_limit=16,
                         test_limit=16, threshold=2.0, progress=False)
    model, res = tr.train(cfg, log=None)
    h = res["history"]
    assert len(h) == 2 and all(0 <= e["val_spikes_per_neuron_step"] for e in h)
    assert all(set(e["thresholds"]) == set(res["thresholds"]) for e in h)
    tr.write_outputs(model, cfg, res, str(tmp_path / "m.net"))
    img = Image.open(tmp_path / "m.png")
    assert img.size == SIZE
    assert "![training curves" in (tmp_path / "m.md").read_text()
