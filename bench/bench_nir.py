"""Third-party networks into Lava through NIR, one table per producer: a small network
built in the producer, trained on sklearn digits for a few seconds, written by the
producer's own NIR exporter, compiled by ``qblif.compile`` (8-bit weights) and run in Lava
(CPU, ``fixed_pt``) and in the exact engine.

Per producer: the test accuracy in the producer (float), of our float NIR simulation, and
in Lava after import; the arg-max agreement of Lava with the producer (fraction of test
samples whose predicted class is the same); the per-layer spike agreement (fraction of
equal (sample, step, neuron) spikes); Lava = exact engine (mismatching counts); and the
quantization report (error per parameter). Writes bench/results/nir.md.

Producers: ``snntorch`` (Linear-Leaky-Linear-Leaky), ``snntorch-rleaky`` (Linear-RLeaky-
Linear-Leaky: a recurrent layer), ``norse`` (Linear-LIFBoxCell-Linear-LIFBoxCell).

    python bench/bench_nir.py [--producers snntorch,snntorch-rleaky,norse] [--seconds 40]
                              [--samples 360] [--steps 8] [--hidden 64]
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
SN_DT = 1e-4      # snnTorch's exporter convention

RESETS = {"zero": None,   # NIR's semantics (tests/snntorch_nets.RESET)
          "default": dict(init_hidden=True)}   # snnTorch's default: subtract, delayed


def data(split, limit=None):
    images, labels = load_dataset("digits", split, limit=limit)
    return quantize_intensity(images, INPUT_BITS).reshape(len(labels), -1), labels


class SnnTorch:
    """snnTorch MLP 64-H-10 of Leaky (``recurrent``: the hidden layer is an RLeaky)."""

    def __init__(self, hidden, reset="zero", recurrent=False):
        torch.manual_seed(0)
        r = RESETS[reset]
        mid = sn.rleaky(hidden, 0.85, 1.0, rec_gain=0.5) if recurrent else \
            sn.leaky((hidden,), 0.85, 1.0, reset=r)
        self.net = torch.nn.Sequential(torch.nn.Linear(64, hidden), mid,
                                       torch.nn.Linear(hidden, 10),
                                       sn.leaky((10,), 0.85, 1.0, output=True, reset=r))
        kind = "RLeaky" if recurrent else "Leaky"
        self.title = (f"snnTorch {sn.snn.__version__}: Linear-{kind}-Linear-Leaky 64-{hidden}-10 "
                      f"(beta 0.85, threshold 1, reset: {reset}), `export_to_nir`")
        self.dt, self.lr = SN_DT, 2e-3

    def out_spikes(self, x, steps):
        from snntorch import utils
        utils.reset(self.net)
        return torch.stack([self.net(x)[0] for _ in range(steps)], dim=1)

    def simulate(self, frames, steps):
        return sn.simulate(self.net, frames, steps)

    def export(self, path):
        sn.export(self.net, (64,), path)


class Norse:
    """Norse MLP 64-H-10 of LIFBoxCell (NIR ``LIF``)."""

    def __init__(self, hidden, reset="zero", recurrent=False):
        import norse_nets as nn_
        self.nn = nn_
        torch.manual_seed(0)
        self.net = nn_.mlp((64, hidden, 10), tau_inv=150.0, thr=1.0)
        self.title = (f"Norse 1.1.0: Linear-LIFBoxCell-Linear-LIFBoxCell 64-{hidden}-10 "
                      "(tau_mem_inv 150, threshold 1, reset to 0), `norse.torch.to_nir`, "
                      f"compiled at dt = {nn_.NIR_DT:g} (Norse's exporter writes dt/tau_inv)")
        self.dt, self.lr = nn_.NIR_DT, 1e-2     # its hidden layer starts nearly silent

    def out_spikes(self, x, steps):
        return self.nn.run(self.net, x, steps)[-1]

    def simulate(self, frames, steps):
        return self.nn.simulate(self.net, frames, steps)

    def export(self, path):
        self.nn.export(self.net, 64, path)


PRODUCERS = {"snntorch": lambda h, r: SnnTorch(h, r),
             "snntorch-rleaky": lambda h, r: SnnTorch(h, r, recurrent=True),
             "norse": lambda h, r: Norse(h, r)}


def train(p, x, y, steps, seconds):
    params = list(p.net.parameters())
    opt = torch.optim.Adam(params, lr=p.lr)
    xt, yt = torch.tensor(x, dtype=torch.float32), torch.tensor(y)
    t0, epochs = time.perf_counter(), 0
    while time.perf_counter() - t0 < seconds:
        perm = torch.randperm(len(yt))
        for b in range(0, len(yt), 64):
            idx = perm[b:b + 64]
            counts = p.out_spikes(xt[idx], steps).sum(1)
            loss = torch.nn.functional.cross_entropy(counts, yt[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        epochs += 1
    return epochs, time.perf_counter() - t0


def bench_one(name, args, x_tr, y_tr, x_te, y_te) -> list:
    p = PRODUCERS[name](args.hidden, args.reset)
    epochs, wall = train(p, x_tr, y_tr, args.steps, args.seconds)
    ref = p.simulate(x_te, args.steps)               # the producer's float run, per layer

    def pred(counts):
        return counts.reshape(len(y_te), args.steps, -1).sum(1).argmax(1)

    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, f"digits_{name}.nir")
        p.export(path)
        ours = simulate(path, x_te, args.steps, dt=p.dt)
        with qblif.compile(path, input_bits=INPUT_BITS, nir_options=dict(dt=p.dt)) as cnet:
            rows = cnet.ir.graph["nir_quant"]
            quant = text_report(rows, p.dt, 8)
            idx = [ly.index for ly in layers(cnet.ir)]
            lava = cnet.run(x_te, args.steps)
            lava_wall = cnet.last_run["wall_s"]
            eng = cnet.run(x_te, args.steps, engine="exact")
            nodes = cnet.ir.graph["nir_nodes"]
        with qblif.compile(path, input_bits=INPUT_BITS,          # precision over headroom
                           nir_options=dict(dt=p.dt, allow_inexact=True)) as cnet:
            rows_in = cnet.ir.graph["nir_quant"]
            lava_in = cnet.run(x_te, args.steps)
            eng_in = cnet.run(x_te, args.steps, engine="exact")
    by_layer = dict(zip(idx, ref))
    out = idx[-1]
    acc_p = float((pred(ref[-1]) == y_te).mean())
    acc_f = float((pred(ours[out]) == y_te).mean())
    lines = [
        f"## {name}\n", f"{p.title}; trained {epochs} epochs in {wall:.0f} s on {len(y_tr)} "
        f"digits (4-bit inputs, {args.steps} steps, count cross-entropy); {len(y_te)} test "
        f"digits; Lava run {lava_wall:.1f} s. Accuracy in the producer (float32) "
        f"{100 * acc_p:.2f}%, of our float NIR simulation {100 * acc_f:.2f}%.\n",
        "| compiled | layers | acc. Lava | acc. producer | arg-max agreement Lava vs producer "
        "| Lava vs exact engine |", "|---|---|---|---|---|---|"]
    table = ["| compiled | layer | spike agreement Lava vs producer | our float sim vs "
             "producer | w err | vth err | bias err | dv err | scale set by |",
             "|---|---|---|---|---|---|---|---|---|"]
    agree_float = agreement(ours, by_layer)
    for how, lv, en, rs in (("default (24-bit headroom guaranteed)", lava, eng, rows),
                            ("--allow-inexact (most precise scale)", lava_in, eng_in, rows_in)):
        agree = agreement(lv, by_layer)
        mism = sum(int(np.sum(lv[i] != en[i])) for i in idx)
        acc_l = float((pred(lv[out]) == y_te).mean())
        argmax = float((pred(lv[out]) == pred(ref[-1])).mean())
        lines.append(f"| {how} | {len(idx)} | {100 * acc_l:.2f}% | {100 * acc_p:.2f}% | "
                     f"{100 * argmax:.2f}% | {mism} mismatching counts |")
        table += [f"| {how} | {i} ({nodes[i]}) | {100 * agree[i]:.2f}% | "
                  f"{100 * agree_float[i]:.2f}% | {r['err']['weight']:.2e} | "
                  f"{r['err']['vth']:.2e} | {r['err']['bias']:.2e} | {r['err']['dv']:.2e} | "
                  f"{r['limit']} |" for i, r in zip(idx, rs)]
    return lines + [""] + table + ["", "```", quant, "```", ""]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--producers", default=",".join(PRODUCERS),
                    help=f"comma-separated, of {', '.join(PRODUCERS)}")
    ap.add_argument("--seconds", type=float, default=40.0, help="training wall time each")
    ap.add_argument("--samples", type=int, default=360, help="test samples run in Lava")
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--reset", choices=tuple(RESETS), default="zero",
                    help="snnTorch feed-forward: zero: reset_mechanism='zero', "
                         "reset_delay=False (what NIR states); default: snnTorch's default "
                         "subtractive delayed reset, which its NIR exporter writes as "
                         "v_reset = 0 all the same")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results", "nir.md"))
    args = ap.parse_args(argv)
    names = [n for n in args.producers.split(",") if n]
    bad = [n for n in names if n not in PRODUCERS]
    if bad:
        ap.error(f"unknown producer(s) {', '.join(bad)} (known: {', '.join(PRODUCERS)})")
    torch.set_num_threads(2)
    x_tr, y_tr = data("train")
    x_te, y_te = data("test", args.samples)
    load = os.getloadavg()
    lines = ["# NIR benchmark: producers -> NIR -> Lava (sklearn digits)\n",
             f"Machine: {platform.machine()}, {os.cpu_count()} CPU(s), shared (load average "
             f"{load[0]:.1f} at the start: timings are noisy). Budget: {args.seconds:g} s of "
             "training per producer. Compiled with 8-bit weights, `input_bits=4`.\n"]
    for name in names:
        lines += bench_one(name, args, x_tr, y_tr, x_te, y_te)
        print("\n".join(lines[-30:]), flush=True)
    text = "\n".join(lines)
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    atomic_write_text(args.out, text)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
