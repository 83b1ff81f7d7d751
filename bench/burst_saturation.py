"""Burst saturation of QB-LIF training: the burst-count histogram per layer (n = 0..K) of a
model trained on a small budget, for a few changes of the scale learning, all at the same
budget and seed (issue 17, "Why the learned scales saturate").

Variants (``--variants``, comma-separated; each is applied on top of the defaults of
``qblif train``, nothing in the package is changed):

- ``base``: the defaults (threshold 1.0 in every layer, ReLSG-ET tail width 1, thresholds at
  the weights' learning rate);
- ``pool4``: the 2x2 sum pools' initial threshold set to 4 (the pool area: the sum of four
  counts over 4 thetas is their average, instead of saturating at K);
- ``tau2`` / ``tau4``: the surrogate's tail width ``tau_grad`` 2 or 4 (thetas);
- ``thlr0.1`` / ``thlr10``: the thresholds' learning rate x0.1 or x10 (Adam; the weights keep
  the schedule's rate);
- ``dense2``: the hidden dense layer's (3,136 inputs) initial threshold set to 2 (any number);
- combinations joined with ``+`` (``pool4+tau2``).

Histogram: the quantized (chip-exact) windowed forward on ``--hist`` validation images; for
each spiking layer the fraction of neuron-steps at n = 0..K, and of the firing ones
(n > 0) the fraction at K. Writes ``OUT.json`` and ``OUT.md``.

    PYTHONPATH=$PWD python bench/burst_saturation.py --limit 2000 --epochs 2 \\
        --variants base,pool4,tau2 --out bench/results/burst_saturation
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import qblif.training.loop as loop  # noqa: E402
from qblif.cli.train import config_from_args, register  # noqa: E402
from qblif.core.data import load_dataset  # noqa: E402
from qblif.training.evaluate import encode  # noqa: E402
from qblif.training.models import set_quantized  # noqa: E402

ORIG_MAKE, ORIG_PARAMS, ORIG_ADAM = loop.make_model, loop.neuron_params, torch.optim.Adam


class ScaledAdam(ORIG_ADAM):
    """Adam whose threshold parameters step at ``factor`` x the group learning rate (the loop
    sets every group's ``lr`` each epoch; the factor is applied inside ``step``)."""

    factor = 1.0

    def __init__(self, params, lr):
        params = list(params)
        th = [p for p in params if getattr(p, "_is_threshold", False)]
        rest = [p for p in params if not getattr(p, "_is_threshold", False)]
        super().__init__([{"params": rest, "scale": 1.0},
                          {"params": th, "scale": self.factor}], lr=lr)

    def step(self, closure=None):
        saved = [g["lr"] for g in self.param_groups]
        for g in self.param_groups:
            g["lr"] = g["lr"] * g["scale"]
        try:
            return super().step(closure)
        finally:
            for g, lr in zip(self.param_groups, saved):
                g["lr"] = lr


def apply_variant(variant: str) -> None:
    """Patch the loop's model factory / neuron parameters / optimizer for ``variant``."""
    pool_theta, dense_theta, tau, thlr = None, None, None, 1.0
    for part in variant.split("+"):
        if part == "base":
            continue
        if part.startswith("pool"):
            pool_theta = float(part[4:])
        elif part.startswith("dense"):
            dense_theta = float(part[5:])
        elif part.startswith("tau"):
            tau = float(part[3:])
        elif part.startswith("thlr"):
            thlr = float(part[4:])
        else:
            raise SystemExit(f"burst_saturation: unknown variant part {part!r}")

    def params(*a, **k):
        p = ORIG_PARAMS(*a, **k)
        if tau is not None and "tau_grad" in p:
            p["tau_grad"] = tau
        return p

    def make(cfg):
        m = ORIG_MAKE(cfg)
        for b in m.blocks:
            n = getattr(b, "neuron", None)
            if n is None or not hasattr(n, "threshold_param"):
                continue
            n.threshold_param._is_threshold = True
            if pool_theta is not None and type(b).__name__ == "Pool":
                n.threshold_param.data.fill_(pool_theta)
            if dense_theta is not None and type(b).__name__ == "Dense" and b is not m.blocks[-1]:
                n.threshold_param.data.fill_(dense_theta)
        return m

    loop.neuron_params, loop.make_model = params, make
    ScaledAdam.factor = thlr
    torch.optim.Adam = ScaledAdam if thlr != 1.0 else ORIG_ADAM


@torch.no_grad()
def histograms(model, images, timesteps: int, input_bits: int, k: int) -> dict:
    """``{layer: counts of n = 0..K}`` over the quantized windowed forward."""
    model.eval()
    set_quantized(model, True)
    x = encode(model, images, input_bits)
    hist = {}
    for i in range(0, len(x), 128):
        xb = x[i:i + 128]
        xs = xb.unsqueeze(-1).expand(*xb.shape, timesteps).contiguous()
        out, inputs = model(xs, record=True)
        outs = inputs[1:] + [out]
        names, c, p, d = [], 0, 0, 0
        for b, o in zip(model.blocks, outs):
            kind = type(b).__name__
            if kind == "Flatten":
                continue
            c, p, d = c + (kind == "Conv"), p + (kind == "Pool"), d + (kind == "Dense")
            name = {"Conv": f"conv{c}", "Pool": f"pool{p}", "Dense": f"dense{d}"}[kind]
            v = o.round().to(torch.int64).reshape(-1).numpy()
            hist[name] = hist.get(name, 0) + np.bincount(v, minlength=k + 1)[:k + 1]
    return {n: h.tolist() for n, h in hist.items()}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--variants", default="base,pool4,tau2,thlr0.1")
    p.add_argument("--dataset", default="fashion-mnist")
    p.add_argument("--limit", type=int, default=2000)
    p.add_argument("--val-limit", type=int, default=1000)
    p.add_argument("--test-limit", type=int, default=1000)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--timesteps", type=int, default=4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--hist", type=int, default=500, help="validation images for the histogram")
    p.add_argument("--out", default="bench/results/burst_saturation")
    a = p.parse_args(argv)
    sub = argparse.ArgumentParser().add_subparsers()
    register(sub)
    tp = sub.choices["train"]
    results = {}
    if os.path.exists(a.out + ".json"):
        with open(a.out + ".json") as f:
            results = json.load(f)
    for variant in a.variants.split(","):
        key = f"{variant}|{a.dataset}|{a.limit}x{a.epochs}|T{a.timesteps}|s{a.seed}"
        if key in results:
            continue
        args = tp.parse_args(["--dataset", a.dataset, "--arch", "conv", "--timesteps",
                              str(a.timesteps), "--limit", str(a.limit), "--val-limit",
                              str(a.val_limit), "--test-limit", str(a.test_limit), "--epochs",
                              str(a.epochs), "--seed", str(a.seed), "--batch-size", "64",
                              "--no-progress", "--out", "/dev/null"])
        cfg = config_from_args(args)
        apply_variant(variant)
        t = time.perf_counter()
        model, res = loop.train(cfg, log=lambda s: print(f"[{variant}] {s}", flush=True))
        xv, _ = load_dataset(cfg.dataset, "val", a.hist)
        hist = histograms(model, xv, cfg.timesteps, cfg.input_bits, cfg.max_burst)
        results[key] = {
            "variant": variant, "val_accuracy": [h["val_accuracy"] for h in res["history"]],
            "best_val_accuracy": res["best_val_accuracy"], "test_accuracy": res["test_accuracy"],
            "test_samples": res["test_samples"],
            "spikes_per_neuron_step": res["spikes_per_neuron_step"],
            "synops_per_sample": res["synops_per_sample"], "thresholds": res["thresholds"],
            "histogram": hist, "seconds": time.perf_counter() - t}
        print(f"[{variant}] best val {res['best_val_accuracy']:.4f} test "
              f"{res['test_accuracy']:.4f} thresholds {res['thresholds']}", flush=True)
        with open(a.out + ".json", "w") as f:
            json.dump(results, f, indent=1)
        write_md(results, a.out + ".md")


def write_md(results: dict, path: str) -> None:
    rows = ["| variant | budget | val acc per epoch (%) | test acc (%) | layer: fraction of "
            "neuron-steps at n = 0..K; of the firing ones at K | learned thresholds |",
            "|---|---|---|---:|---|---|"]
    for key, r in results.items():
        budget = " ".join(key.split("|")[1:])
        layers = []
        for name, h in r["histogram"].items():
            h = np.asarray(h, dtype=float)
            frac = h / max(h.sum(), 1)
            fire = h[1:].sum()
            layers.append(f"{name} [{' '.join(f'{f:.2f}' for f in frac)}] K:{h[-1] / max(fire, 1):.0%}")
        th = " ".join(f"{v:.2f}" for v in r["thresholds"].values())
        rows.append(f"| {r['variant']} | {budget} | "
                    f"{' '.join(f'{100 * v:.1f}' for v in r['val_accuracy'])} | "
                    f"{100 * r['test_accuracy']:.2f} | {'<br>'.join(layers)} | {th} |")
    with open(path, "w") as f:
        f.write("\n".join(rows) + "\n")


if __name__ == "__main__":
    main()
