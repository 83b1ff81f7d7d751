"""A third-party network into Lava through NIR: an snnTorch MLP trained on sklearn digits
for a few seconds, written by snnTorch's own NIR exporter, compiled by ``qblif.compile``
(8-bit weights) and run in Lava (CPU, ``fixed_pt``).

Reports the test accuracy in snnTorch (float), of our float NIR simulation, and in Lava
after import, and the per-layer spike agreement of the Lava run with snnTorch's float run
(fraction of equal (sample, step, neuron) spikes). Writes bench/results/nir.md.

    python bench/bench_nir.py [--seconds 20] [--samples 360] [--steps 8] [--hidden 64]
                              [--reset zero|default] [--out FILE]
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
import snntorch_nets as sn  # noqa: E402

import qblif  # noqa: E402
from qblif.ir import layers  # noqa: E402
from qblif.nir.quantize import text_report  # noqa: E402
from qblif.nir.simulate import agreement, simulate  # noqa: E402
from qblif.core.data import load_dataset  # noqa: E402
from qblif.core.encoding import quantize_intensity  # noqa: E402
from qblif.core.fileio import atomic_write_text  # noqa: E402

INPUT_BITS = 4
DT = 1e-4      # snnTorch's exporter convention


def data(split, limit=None):
    images, labels = load_dataset("digits", split, limit=limit)
    return quantize_intensity(images, INPUT_BITS).reshape(len(labels), -1), labels


RESETS = {"zero": None,   # NIR's semantics (tests/snntorch_nets.RESET)
          "default": dict(init_hidden=True)}   # snnTorch's default: subtract, delayed


def build(hidden, reset):
    torch.manual_seed(0)
    r = RESETS[reset]
    return torch.nn.Sequential(torch.nn.Linear(64, hidden), sn.leaky((hidden,), 0.85, 1.0,
                                                                     reset=r),
                               torch.nn.Linear(hidden, 10), sn.leaky((10,), 0.85, 1.0,
                                                                     output=True, reset=r))


def train(net, x, y, steps, seconds):
    from snntorch import functional as SF, utils
    opt = torch.optim.Adam(net.parameters(), lr=2e-3)
    loss_fn = SF.ce_count_loss()
    xt, yt = torch.tensor(x, dtype=torch.float32), torch.tensor(y)
    t0, epochs = time.perf_counter(), 0
    while time.perf_counter() - t0 < seconds:
        perm = torch.randperm(len(yt))
        for b in range(0, len(yt), 64):
            idx = perm[b:b + 64]
            utils.reset(net)
            spk = torch.stack([net(xt[idx])[0] for _ in range(steps)])
            loss = loss_fn(spk, yt[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        epochs += 1
    return epochs, time.perf_counter() - t0


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=20.0, help="training wall time")
    ap.add_argument("--samples", type=int, default=360, help="test samples run in Lava")
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--reset", choices=tuple(RESETS), default="zero",
                    help="zero: reset_mechanism='zero', reset_delay=False (what NIR states); "
                         "default: snnTorch's default subtractive delayed reset, which its "
                         "NIR exporter writes as v_reset = 0 all the same")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results", "nir.md"))
    args = ap.parse_args(argv)
    torch.set_num_threads(2)
    x_tr, y_tr = data("train")
    x_te, y_te = data("test", args.samples)
    net = build(args.hidden, args.reset)
    epochs, wall = train(net, x_tr, y_tr, args.steps, args.seconds)
    net.eval()
    ref = sn.simulate(net, x_te, args.steps)               # snnTorch float, per spiking layer

    def acc(counts):
        return float((counts.reshape(len(y_te), args.steps, -1).sum(1).argmax(1) == y_te).mean())

    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "digits_snntorch.nir")
        sn.export(net, (64,), path)
        ours = simulate(path, x_te, args.steps, dt=DT)
        with qblif.compile(path, input_bits=INPUT_BITS, nir_options=dict(dt=DT)) as cnet:
            quant = text_report(cnet.ir.graph["nir_quant"], DT, 8)
            idx = [ly.index for ly in layers(cnet.ir)]
            lava = cnet.run(x_te, args.steps)
            lava_wall = cnet.last_run["wall_s"]
    by_layer = dict(zip(idx, ref))
    agree = agreement(lava, by_layer)
    agree_float = agreement(ours, by_layer)
    out = idx[-1]
    rows = [("snnTorch (float32)", acc(ref[-1])), ("our float NIR simulation", acc(ours[out])),
            ("Lava after NIR import (8-bit weights, fixed point)", acc(lava[out]))]
    lines = [
        f"# NIR benchmark: snnTorch -> NIR -> Lava (sklearn digits)\n",
        f"snnTorch {sn.snn.__version__} MLP 64-{args.hidden}-10 (Leaky, beta 0.85, threshold 1, "
        f"reset: {args.reset}), trained {epochs} epochs in {wall:.0f} s on {len(y_tr)} digits "
        f"(4-bit inputs, {args.steps} steps, count cross-entropy); exported with snnTorch's "
        f"own `export_to_nir`; compiled with `qblif.compile(..., nir_options=dict(dt=1e-4))`; "
        f"{len(y_te)} test digits. Machine: {platform.machine()}, {os.cpu_count()} CPU(s); "
        f"Lava run {lava_wall:.1f} s.\n",
        "| model | test accuracy |", "|---|---|",
        *[f"| {k} | {100 * v:.2f}% |" for k, v in rows], "",
        "| layer | spike agreement Lava vs snnTorch | our float sim vs snnTorch |", "|---|---|---|",
        *[f"| {i} ({cnet.ir.graph['nir_nodes'][i]}) | {100 * agree[i]:.2f}% | "
          f"{100 * agree_float[i]:.2f}% |" for i in idx], "",
        "```", quant, "```", ""]
    text = "\n".join(lines)
    print(text)
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    atomic_write_text(args.out, text)


if __name__ == "__main__":
    main()
