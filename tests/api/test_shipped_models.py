"""Every shipped model (netx_models/*.net) runs in Lava exactly as SLAYER computes it, and at
the accuracy its model card (NAME.json) claims.

For each file found at collection time: compile (graded), stream the first ``n`` images of
the card's test split through one Lava run, and check
(a) every layer's burst counts equal SLAYER's quantized forward (``qblif.verify``),
(b) Lava's accuracy on the sample equals SLAYER's on the same sample (same readout),
(c) the sample accuracy agrees with the card's ``test_accuracy`` within a binomial tolerance,
    on the Lava sample and on a larger sample through SLAYER's quantized forward (the whole
    test set for digits).

Readout (as ``qblif.training.evaluate``, which wrote the card): the output layer's counts
summed over the T + latency SLAYER steps from the first input step, argmax. The output layer
at depth d is silent for its first d steps, so that is exactly the T-step window that
``CompiledNetwork.run`` reports for it (the file's ``/qblif/timesteps`` is T). Where the whole
test set fits (digits), the card's accuracy must be reproduced exactly.
"""
from __future__ import annotations

import glob
import json
import os

import numpy as np
import pytest

import qblif
from qblif.ir import layers
from qblif.verify import first_mismatch, slayer_counts

pytest.importorskip("torch")

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODELS = sorted(glob.glob(os.path.join(ROOT, "netx_models", "*.net")))

# Images per model through Lava: enough for a meaningful accuracy on the MLPs; fewer for the
# Fashion-MNIST conv models, whose Lava Conv processes simulate at about 30 ms per step here.
# (c) is checked twice: on the Lava sample and on a larger SLAYER sample (SAMPLES_CARD),
# which (a) ties to Lava on the images both see.
SAMPLES = {"digits": 60, "fashion-mnist": 30}
SAMPLES_CONV_LARGE = 12
SAMPLES_CARD = 200          # SLAYER quantized forward only (digits: its whole test set, 359)


def _card(path):
    with open(os.path.splitext(path)[0] + ".json") as f:
        return json.load(f)


def _num_samples(card, net):
    n = SAMPLES.get(card["dataset"], 8)
    if card["dataset"] != "digits" and any(ly.kind == "conv" for ly in layers(net.ir)):
        n = SAMPLES_CONV_LARGE
    return min(n, int(card.get("test_samples") or n))


def tolerance(p: float, n: int) -> float:
    """Allowed |sample accuracy - card accuracy| for n images.

    The sample is n images of the very test set the card was measured on; for a random
    subset, the number correct is hypergeometric, whose variance is at most the binomial
    p(1-p)/n. Three standard errors make a false alarm < 0.3% (normal approximation); the
    extra 1/n (one image) absorbs the discreteness of a count out of n and the poor normal
    approximation near p = 1, where the standard error vanishes. A wrong card (or a broken
    model) fails: digits p=0.972, n=60 allows 0.080, so a model at 89% or below is caught;
    with n = 12 (Fashion-MNIST conv in Lava) it is loose (about 0.5); the SLAYER sample of
    200 allows about 0.11 at p = 0.61.
    """
    return 3.0 * np.sqrt(p * (1.0 - p) / n) + 1.0 / n


def test_models_are_shipped():
    assert MODELS, "no netx_models/*.net found"


@pytest.mark.parametrize("path", MODELS, ids=[os.path.basename(p) for p in MODELS])
def test_shipped_model_lava_equals_slayer_and_card(path):
    from qblif.core.data import load_dataset
    from qblif.core.encoding import quantize_intensity

    card = _card(path)
    with qblif.compile(path, encoding="graded") as net:
        steps = int(net.ir.graph["timesteps"])
        assert steps == int(card["timesteps"]), "file and card disagree on T"
        n = _num_samples(card, net)
        images, labels = load_dataset(card["dataset"], "test", limit=n)
        frames = quantize_intensity(images, int(net.ir.graph["input_bits"]))
        frames = frames.reshape((len(frames),) + net.input_shape)
        out = net.run(frames, steps)
        want = slayer_counts(path, net.ir, frames, steps)
        last = net.output_index

    # (a) every layer, every step, every neuron
    assert sorted(out) == sorted(want)
    assert out[last].sum() > 0, "a silent output layer proves nothing"
    bad = first_mismatch(out, want)
    assert bad is None, f"Lava differs from SLAYER at {bad}"

    # (b) accuracy under the card's readout: output counts over each sample's T-step window
    def accuracy(counts):
        pred = counts.reshape(n, steps, -1).sum(1).argmax(1)
        return float((pred == labels).mean())
    acc_lava, acc_slayer = accuracy(out[last]), accuracy(want[last])
    assert acc_lava == acc_slayer

    # (c) consistent with the card: the Lava sample, then a larger SLAYER sample
    p = float(card["test_accuracy"])
    tol = tolerance(p, n)
    assert abs(acc_lava - p) <= tol, (f"{os.path.basename(path)}: accuracy {acc_lava:.3f} on "
                                      f"{n} test images vs card {p:.4f} (tolerance {tol:.3f})")
    m = int(card.get("test_samples") or SAMPLES_CARD)
    m = m if card["dataset"] == "digits" else min(m, SAMPLES_CARD)
    images, labels = load_dataset(card["dataset"], "test", limit=m)
    frames = quantize_intensity(images, int(net.ir.graph["input_bits"]))
    frames = frames.reshape((len(frames),) + net.input_shape)
    counts = slayer_counts(path, net.ir, frames, steps)[last]
    pred = counts.reshape(len(frames), steps, -1).sum(1).argmax(1)
    acc_big = float((pred == labels).mean())
    if len(frames) == int(card.get("test_samples") or -1):
        assert acc_big == pytest.approx(p, abs=1e-12), "the card's accuracy is not reproduced"
    tol = tolerance(p, len(frames))
    assert abs(acc_big - p) <= tol, (f"{os.path.basename(path)}: SLAYER accuracy {acc_big:.4f} on "
                                     f"{len(frames)} test images vs card {p:.4f} (tolerance "
                                     f"{tol:.3f})")
