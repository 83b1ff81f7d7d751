"""Third-party networks into Lava through NIR, one table per producer: a small network
built in the producer, trained on sklearn digits for a few seconds, written by the
producer's own NIR exporter, compiled by ``qblif.compile`` (8-bit weights) and run in Lava
(CPU, ``fixed_pt``) and in the exact engine.

Per producer: the test accuracy in the producer (float), of our float NIR simulation, and
in Lava after import; the arg-max agreement of Lava with the producer (fraction of test
samples whose predicted class is the same); the per-layer spike agreement (fraction of
equal (sample, step, neuron) spikes); Lava = exact engine (mismatching counts); and the
quantization report (error per parameter), for the default compile (24-bit headroom
guaranteed) and ``--allow-inexact`` (the most precise scale). Writes a summary table and one
section per producer to bench/results/nir_producers.md.

Producers: ``snntorch`` (Linear-Leaky-Linear-Leaky), ``snntorch-rleaky`` (Linear-RLeaky-
Linear-Leaky: a recurrent layer), ``snntorch-synaptic`` (Linear-Synaptic-Linear-Leaky),
``snntorch-conv`` (Conv2d-AvgPool2d-Leaky-Flatten-Linear-Leaky), ``norse``
(Linear-LIFBoxCell x 2), ``sinabs`` (Conv2d-IAF-SumPool2d-Conv2d-IAF-Flatten-Linear-IAF),
``rockpool`` (LinearTorch-LIFTorch x 2; its file as written and restated as Rockpool reads
it, tests/rockpool_nets.py). A producer that is not installed is reported as skipped.

    python bench/bench_nir.py [--producers snntorch,norse,...] [--epochs 3] [--seconds S]
                              [--samples 360] [--steps 8] [--hidden 64]
                              [--reset zero|default] [--out FILE]
"""
from __future__ import annotations

import argparse
import math
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


class Producer:
    """A producer's network: ``net``, ``params()`` (what to train), ``out_spikes(x, steps)``
    (differentiable output spikes ``(S, T, 10)``), ``simulate(frames, steps)`` (its float
    run, per neuron layer), ``export(path)`` (its own exporter), ``dt`` (the NIR dt its
    files mean), ``shape`` (the input shape), ``readings`` (label -> ``export`` keyword
    arguments: the files to compile, the first is the default)."""
    shape, lr, readings = (64,), 2e-3, {"": {}}

    def params(self):
        return list(self.net.parameters())


class SnnTorch(Producer):
    """snnTorch 64-H-10 of Leaky (``kind``: ``RLeaky`` hidden layer, ``Synaptic`` hidden
    layer with unbiased Linear layers, ``conv``: Conv2d-AvgPool2d-Leaky-Flatten-Linear-
    Leaky, fused into one conv with stride 2)."""

    def __init__(self, hidden, reset="zero", kind="Leaky"):
        torch.manual_seed(0)
        r = RESETS[reset]
        out = sn.leaky((10,), 0.85, 1.0, output=True, reset=r)
        if kind == "conv":
            self.shape = (1, 8, 8)
            self.net = torch.nn.Sequential(
                torch.nn.Conv2d(1, 8, 3, padding=1), torch.nn.AvgPool2d(2),
                sn.leaky((8, 4, 4), 0.85, 1.0, reset=r), torch.nn.Flatten(),
                torch.nn.Linear(128, 10), out)
            layout = "Conv2d(1,8,3)-AvgPool2d(2)-Leaky-Flatten-Linear-Leaky 1x8x8-8x4x4-10"
        else:
            mid = {"RLeaky": lambda: sn.rleaky(hidden, 0.85, 1.0, rec_gain=0.5),
                   "Synaptic": lambda: sn.synaptic((hidden,), 0.5, 0.85, 1.0),
                   "Leaky": lambda: sn.leaky((hidden,), 0.85, 1.0, reset=r)}[kind]()
            bias = kind != "Synaptic"       # a bias into a synaptic current is refused
            self.net = torch.nn.Sequential(torch.nn.Linear(64, hidden, bias=bias), mid,
                                           torch.nn.Linear(hidden, 10, bias=bias), out)
            layout = f"Linear-{kind}-Linear-Leaky 64-{hidden}-10"
        self.title = (f"snnTorch {sn.snn.__version__}: {layout} (beta 0.85, threshold 1, "
                      f"reset: {reset}), `export_to_nir`")
        self.dt = SN_DT

    def out_spikes(self, x, steps):
        from snntorch import utils
        utils.reset(self.net)
        x = x.reshape((len(x),) + self.shape)
        return torch.stack([self.net(x)[0] for _ in range(steps)], dim=1)

    def simulate(self, frames, steps):
        return sn.simulate(self.net, np.reshape(frames, (len(frames),) + self.shape), steps)

    def export(self, path):
        sn.export(self.net, self.shape, path)


class Norse(Producer):
    """Norse MLP 64-H-10 of LIFBoxCell (NIR ``LIF``)."""
    lr = 1e-2           # its hidden layer starts nearly silent

    def __init__(self, hidden, reset="zero"):
        import norse_nets as nn_
        self.nn = nn_
        torch.manual_seed(0)
        self.net = nn_.mlp((64, hidden, 10), tau_inv=150.0, thr=1.0)
        self.title = (f"Norse 1.1.0: Linear-LIFBoxCell-Linear-LIFBoxCell 64-{hidden}-10 "
                      "(tau_mem_inv 150, threshold 1, reset to 0), `norse.torch.to_nir`, "
                      f"compiled at dt = {nn_.NIR_DT:g} (Norse's exporter writes dt/tau_inv)")
        self.dt = nn_.NIR_DT

    def out_spikes(self, x, steps):
        return self.nn.run(self.net, x, steps)[-1]

    def simulate(self, frames, steps):
        return self.nn.simulate(self.net, frames, steps)

    def export(self, path):
        self.nn.export(self.net, 64, path)


class Sinabs(Producer):
    """Sinabs Conv2d-IAF-SumPool2d-Conv2d-IAF-Flatten-Linear-IAF on 1x8x8 (``IAFSqueeze``
    with ``SingleSpike`` and ``MembraneReset``: what its NIR ``IF`` states; dt = 1)."""
    shape, dt, lr = (1, 8, 8), 1.0, 5e-3

    def __init__(self, hidden, reset="zero"):
        import sinabs
        import sinabs.layers as sl
        from sinabs.activation import MembraneReset, SingleSpike
        self.sinabs = sinabs
        torch.manual_seed(0)
        self.steps = 8

        def iaf():
            return sl.IAFSqueeze(num_timesteps=self.steps, spike_fn=SingleSpike,
                                 reset_fn=MembraneReset(), min_v_mem=None)
        self.net = torch.nn.Sequential(
            torch.nn.Conv2d(1, 8, 3, padding=1, bias=False), iaf(), sl.SumPool2d(2),
            torch.nn.Conv2d(8, 16, 3, padding=1, bias=False), iaf(), torch.nn.Flatten(),
            torch.nn.Linear(256, 10, bias=False), iaf())
        with torch.no_grad():       # inputs 0..15, IF threshold 1: start with small weights
            for j, gain in ((0, 0.1), (3, 0.5), (6, 0.5)):
                self.net[j].weight.mul_(gain)
        self.cells = [m for m in self.net if isinstance(m, sl.IAFSqueeze)]
        self.title = (f"Sinabs {sinabs.__version__}: Conv2d(1,8,3)-IAF-SumPool2d(2)-"
                      "Conv2d(8,16,3)-IAF-Flatten-Linear-IAF 1x8x8 (SingleSpike, MembraneReset, "
                      "threshold 1), `sinabs.to_nir`, compiled at dt = 1 (its IF has r = 1)")

    def _run(self, x, steps):
        """Per IAF layer spikes ``(S, T, ...)`` (differentiable)."""
        assert steps == self.steps, "IAFSqueeze is built for 8 steps"
        self.sinabs.reset_states(self.net)
        rec = {}
        hooks = [m.register_forward_hook(lambda mod, _i, o: rec.__setitem__(id(mod), o))
                 for m in self.cells]
        try:
            x = x.reshape((len(x), 1) + self.shape).expand((-1, steps) + self.shape)
            self.net(x.reshape((-1,) + self.shape))
        finally:
            for h in hooks:
                h.remove()
        return [rec[id(m)].reshape((len(x), steps) + rec[id(m)].shape[1:]) for m in self.cells]

    def out_spikes(self, x, steps):
        return self._run(x, steps)[-1]

    @torch.no_grad()
    def simulate(self, frames, steps):
        x = torch.as_tensor(np.asarray(frames, np.float32))
        return [r.numpy() for r in self._run(x, steps)]

    def export(self, path):
        import nir
        import sinabs.layers as sl
        net = torch.nn.Sequential(*[sl.IAFSqueeze(batch_size=1, spike_fn=m.spike_fn,
                                                  reset_fn=m.reset_fn, min_v_mem=None)
                                    if isinstance(m, sl.IAFSqueeze) else m for m in self.net])
        graph = self.sinabs.to_nir(net, torch.zeros((1,) + self.shape))
        graph.infer_types()         # nirtorch 2.x builds it unchecked
        nir.write(str(path), graph)


class Rockpool(Producer):
    """Rockpool LinearTorch-LIFTorch x 2 64-H-10 (tau_mem 4 ms, tau_syn 2 ms, dt 1 ms, one
    spike per step at most): its node mapping's file as written, and restated as Rockpool
    reads it (tests/rockpool_nets.py)."""
    lr = 2e-3

    def __init__(self, hidden, reset="zero"):
        import rockpool_nets as rn
        self.rn = rn
        torch.manual_seed(0)
        self.net = rn.mlp((64, hidden, 10), tau_mem=4e-3, tau_syn=2e-3)
        with torch.no_grad():       # inputs 0..15: start below saturation
            self.net[0].weight.mul_(0.1)
        self.dt = rn.DT
        self.readings = {"restated (Rockpool's own reading: exponential decays at dt)":
                         dict(rockpool_semantics=True),
                         "as written (NIR's reading of its CubaLIF)": {}}
        self.title = (f"Rockpool 3.1.0: LinearTorch-LIFTorch-LinearTorch-LIFTorch 64-{hidden}-10 "
                      "(tau_mem 4 ms, tau_syn 2 ms, threshold 1, max_spikes_per_dt 1, reset "
                      "by subtraction), its `to_nir` node mapping with batch and time dims "
                      "ignored, compiled at dt = 1e-3")

    def params(self):
        return self.rn.freeze_neurons(self.net)

    def out_spikes(self, x, steps):
        return self.rn.run(self.net, x, steps)[-1]

    def simulate(self, frames, steps):
        return self.rn.simulate(self.net, frames, steps)

    def export(self, path, **kw):
        self.rn.export(self.net, 64, path, **kw)


PRODUCERS = {"snntorch": lambda h, r: SnnTorch(h, r),
             "snntorch-rleaky": lambda h, r: SnnTorch(h, r, kind="RLeaky"),
             "snntorch-synaptic": lambda h, r: SnnTorch(h, r, kind="Synaptic"),
             "snntorch-conv": lambda h, r: SnnTorch(h, r, kind="conv"),
             "norse": lambda h, r: Norse(h, r),
             "sinabs": lambda h, r: Sinabs(h, r),
             "rockpool": lambda h, r: Rockpool(h, r)}


def train(p, x, y, steps, epochs, seconds=None):
    """Adam on the count cross-entropy, batches of 64 in a seeded order, for ``epochs``
    (a float) or until ``seconds`` have passed, whichever comes first (the batch that
    crosses it ends the training). Returns (epochs done as a float, wall s)."""
    opt = torch.optim.Adam(p.params(), lr=p.lr)
    xt, yt = torch.tensor(x, dtype=torch.float32), torch.tensor(y)
    gen = torch.Generator().manual_seed(1)
    limit = math.inf if seconds is None else seconds
    t0, done, total = time.perf_counter(), 0, int(round(epochs * len(yt)))
    while done < total and time.perf_counter() - t0 < limit:
        perm = torch.randperm(len(yt), generator=gen)
        for b in range(0, len(yt), 64):
            idx = perm[b:b + 64]
            counts = p.out_spikes(xt[idx], steps).reshape(len(idx), steps, -1).sum(1)
            loss = torch.nn.functional.cross_entropy(counts, yt[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            done += len(idx)
            if done >= total or time.perf_counter() - t0 >= limit:
                break
    return done / len(yt), time.perf_counter() - t0


def compile_and_run(path, p, x_te, steps, allow_inexact, lava=True):
    """Compile ``path`` (8-bit weights, 4-bit inputs) and run the test digits in the exact
    engine (and in Lava with ``lava``). Returns a dict of the results."""
    with qblif.compile(path, input_bits=INPUT_BITS,
                       nir_options=dict(dt=p.dt, allow_inexact=allow_inexact)) as cnet:
        out = dict(rows=cnet.ir.graph["nir_quant"], nodes=cnet.ir.graph["nir_nodes"],
                   held=cnet.ir.graph.get("nir_held_input", []),
                   idx=[ly.index for ly in layers(cnet.ir) if ly.kind != "flatten"],
                   quant=text_report(cnet.ir.graph["nir_quant"], p.dt, 8))
        frames = x_te.reshape((len(x_te),) + tuple(cnet.input_shape))
        out["eng"] = cnet.run(frames, steps, engine="exact")
        if lava:
            out["lava"] = cnet.run(frames, steps)
            out["lava_wall"] = cnet.last_run["wall_s"]
    return out


def bench_one(name, args, x_tr, y_tr, x_te, y_te):
    """One producer: its section of the results (lines) and its summary rows."""
    p = PRODUCERS[name](args.hidden, args.reset)
    epochs, wall = train(p, x_tr, y_tr, args.steps, args.epochs, args.seconds)
    ref = p.simulate(x_te, args.steps)               # the producer's float run, per layer

    def pred(counts):
        return np.asarray(counts).reshape(len(y_te), args.steps, -1).sum(1).argmax(1)

    acc_p = float((pred(ref[-1]) == y_te).mean())
    ref_counts = np.asarray(ref[-1]).reshape(len(y_te), args.steps, -1).sum(1)
    top = ref_counts == ref_counts.max(1, keepdims=True)    # the producer's top classes
    tie = top.sum(1) > 1            # its arg-max is then the lowest tied class index
    lines = [f"## {name}\n", f"{p.title}; trained {epochs:.1f} epochs in {wall:.0f} s on "
             f"{len(y_tr)} digits (4-bit inputs, {args.steps} steps, count cross-entropy); "
             f"{len(y_te)} test digits. Accuracy in the producer (float32) "
             f"{100 * acc_p:.2f}%.\n",
             "| file | compiled | acc. our float sim | acc. Lava | acc. producer | arg-max "
             "agreement Lava vs producer | Lava vs exact engine |", "|---|---|---|---|---|---|---|"]
    table = ["| file | compiled | layer | spike agr. Lava vs producer | our float sim vs "
             "producer | w err | vth err | bias err | du err | dv err | scale set by |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    quants, summary = [], []
    with tempfile.TemporaryDirectory() as d:
        for reading, kw in p.readings.items():
            path = os.path.join(d, f"digits_{name}.nir")
            p.export(path, **kw)
            runs = {how: compile_and_run(path, p, x_te, args.steps, how != "default",
                                         lava=how == "default")
                    for how in ("default", "--allow-inexact")}
            idx = runs["default"]["idx"]
            ours = simulate(path, x_te.reshape((len(x_te),) + tuple(p.shape)), args.steps,
                            dt=p.dt)
            by_layer = {i: np.asarray(r).reshape(ours[i].shape) for i, r in zip(idx, ref)}
            agree_float = agreement(ours, by_layer)
            acc_f = float((pred(ours[idx[-1]]) == y_te).mean())
            for how, res in runs.items():
                counts = res.get("lava", res["eng"])
                mism = (f"{sum(int(np.sum(res['lava'][i] != res['eng'][i])) for i in idx)} "
                        "mismatching counts" if "lava" in res else "(exact engine run)")
                agree = agreement(counts, by_layer)
                acc_l = float((pred(counts[idx[-1]]) == y_te).mean())
                ours_pred = pred(counts[idx[-1]])
                differ = ours_pred != pred(ref[-1])
                argmax = 1.0 - float(differ.mean())
                in_top = float(top[np.arange(len(y_te)), ours_pred].mean())
                label = how + (" (first layer: held frames)" if res["held"] else "")
                lines.append(f"| {reading or 'as exported'} | {label} | {100 * acc_f:.2f}% | "
                             f"{100 * acc_l:.2f}% | {100 * acc_p:.2f}% | {100 * argmax:.2f}% | "
                             f"{mism} |")
                table += [f"| {reading or 'as exported'} | {how} | {i} ({res['nodes'][i]}) | "
                          f"{100 * agree[i]:.2f}% | {100 * agree_float[i]:.2f}% | "
                          f"{r['err']['weight']:.2e} | {r['err']['vth']:.2e} | "
                          f"{r['err']['bias']:.2e} | {r['err']['du']:.2e} | "
                          f"{r['err']['dv']:.2e} | {r['limit']} |"
                          for i, r in zip(idx, res["rows"])]
                quants.append(f"{reading or 'as exported'}, {how}:\n{res['quant']}")
                summary.append(dict(
                    producer=name, reading=reading.split(" (")[0] if reading else "", how=how,
                    layers=len(idx), acc_p=acc_p, acc_f=acc_f, acc_l=acc_l, argmax=argmax,
                    agree=[agree[i] for i in idx],
                    w_err=[r["err"]["weight"] for r in res["rows"]],
                    mism=mism.split()[0] if "lava" in res else "-",
                    differ=int(differ.sum()), at_tie=int((differ & tie).sum()),
                    in_top=in_top,
                    lava_wall=res.get("lava_wall")))
    return lines + [""] + table + ["", "```", "\n\n".join(quants), "```", ""], summary


def summary_table(rows) -> list:
    out = ["| producer | file | compiled | layers | acc. producer | acc. our float sim | "
           "acc. Lava | Δ acc. (points) | arg-max agr. | differ (at a producer tie) | "
           "Lava's class among the producer's top | per-layer spike agr. | w err per layer | "
           "Lava ≠ engine |", "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        out.append(
            f"| {r['producer']} | {r['reading'] or '-'} | {r['how']} | {r['layers']} | "
            f"{100 * r['acc_p']:.2f}% | {100 * r['acc_f']:.2f}% | {100 * r['acc_l']:.2f}% | "
            f"{100 * (r['acc_l'] - r['acc_p']):+.2f} | {100 * r['argmax']:.2f}% | "
            f"{r['differ']} ({r['at_tie']}) | {100 * r['in_top']:.2f}% | "
            + ", ".join(f"{100 * a:.2f}%" for a in r["agree"]) + " | "
            + ", ".join(f"{e:.1e}" for e in r["w_err"]) + f" | {r['mism']} |")
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--producers", default=",".join(PRODUCERS),
                    help=f"comma-separated, of {', '.join(PRODUCERS)}")
    ap.add_argument("--epochs", type=float, default=3.0, help="training epochs each")
    ap.add_argument("--seconds", type=float, default=None,
                    help="cap on each producer's training wall time (default: none)")
    ap.add_argument("--samples", type=int, default=360, help="test samples run in Lava")
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--reset", choices=tuple(RESETS), default="zero",
                    help="snnTorch feed-forward: zero: reset_mechanism='zero', "
                         "reset_delay=False (what NIR states); default: snnTorch's default "
                         "subtractive delayed reset, which its NIR exporter writes as "
                         "v_reset = 0 all the same")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results",
                                                  "nir_producers.md"))
    args = ap.parse_args(argv)
    names = [n for n in args.producers.split(",") if n]
    bad = [n for n in names if n not in PRODUCERS]
    if bad:
        ap.error(f"unknown producer(s) {', '.join(bad)} (known: {', '.join(PRODUCERS)})")
    torch.set_num_threads(2)
    x_tr, y_tr = data("train")
    x_te, y_te = data("test", args.samples)
    load = os.getloadavg()
    t0 = time.perf_counter()
    sections, rows = [], []
    for name in names:
        try:
            lines, summary = bench_one(name, args, x_tr, y_tr, x_te, y_te)
        except ImportError as e:        # a producer that is not installed: say so
            lines, summary = [f"## {name}\n", f"skipped: {e}\n"], []
        sections += lines
        rows += summary
        print("\n".join(summary_table(summary)), flush=True)
    text = "\n".join(
        ["# NIR benchmark: producers -> NIR -> Lava (sklearn digits)\n",
         f"`python bench/bench_nir.py {' '.join(argv if argv is not None else sys.argv[1:])}`"
         f". Machine: {platform.machine()}, {os.cpu_count()} CPU(s), shared (load average "
         f"{load[0]:.1f} at the start); {time.perf_counter() - t0:.0f} s in all. Budget: "
         f"{args.epochs:g} epochs of training per producer"
         + (f" (at most {args.seconds:g} s)" if args.seconds else "") + ". Compiled with 8-bit "
         "weights, "
         "`input_bits=4`: `default` (the scale guarantees the 24-bit headroom; Lava and the "
         "exact engine) and `--allow-inexact` (the most precise scale; exact engine). Targets "
         "(issue 19): arg-max agreement >= 99%, accuracy within 0.5 points of the producer's."
         "\n", "## Summary\n"] + summary_table(rows) + [""] + sections)
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    atomic_write_text(args.out, text)
    print(f"wrote {args.out} ({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
