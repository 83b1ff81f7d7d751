"""Exact engine benchmark: the Fashion-MNIST test set through ``fmnist_qblif_conv``.

In one run of this script:

* ``exact engine``: :class:`qblif.exact.ExactEngine` on the compiled IR, every test image
  (``--samples``, default all 10,000) for the file's T steps, output layer recorded; once per
  ``--threads`` value (CPU), and on CUDA where a GPU is present. Accuracy must equal the model
  card's ``test_accuracy`` (91.98% on all 10,000).
* baseline ``qblif.exact.oracle`` (the numpy oracle) on the first ``--baseline-samples`` images
  (default 100), extrapolated linearly to the engine's sample count; the engine's counts on
  those images must equal the oracle's on every layer and step.
* optional baseline ``qblif evaluate --engine slayer`` (SLAYER's quantized forward) on
  ``--slayer-samples`` images (default 0: skipped), extrapolated.
* ``qblif evaluate`` (default engine) of the whole test set as a user runs it: a fresh
  ``python -m qblif.cli.main evaluate MODEL`` process, wall time from start to exit (imports,
  compile, dataset, T + latency steps per image, SynOps statistics).

The machine may be shared: the table records the load average before and after, and the CPU
seconds of each in-process run (``time.process_time``, all threads; under load, idle spinning of
torch's threads shows up there too).

Writes bench/results/engine.md (atomic) and prints it.

    python bench/bench_engine.py [--samples 10000] [--threads 2 1] [--baseline-samples 100]
                                 [--slayer-samples 0] [--no-evaluate]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")     # as the qblif CLI (qblif/cli/main.py)

import qblif  # noqa: E402
from qblif.exact import ExactEngine  # noqa: E402
from qblif.exact.oracle import forward  # noqa: E402
from qblif.core.data import load_dataset  # noqa: E402
from qblif.core.encoding import quantize_intensity  # noqa: E402
from qblif.core.fileio import atomic_write_text  # noqa: E402

MODEL = os.path.join(ROOT, "netx_models", "fmnist_qblif_conv.net")
TARGET_ENGINE_S = 10.0
TARGET_EVALUATE_S = 15.0


def _load() -> str:
    a, b, c = os.getloadavg()
    return f"{a:.1f} / {b:.1f} / {c:.1f}"


def _timed(f):
    w, c = time.perf_counter(), time.process_time()
    r = f()
    return r, time.perf_counter() - w, time.process_time() - c


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default=MODEL)
    ap.add_argument("--samples", type=int, default=None, help="test images (default all)")
    ap.add_argument("--threads", type=int, nargs="+", default=[2, 1])
    ap.add_argument("--baseline-samples", type=int, default=100)
    ap.add_argument("--slayer-samples", type=int, default=0)
    ap.add_argument("--no-evaluate", action="store_true")
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "results", "engine.md"))
    args = ap.parse_args(argv)
    import torch

    with open(os.path.splitext(args.model)[0] + ".json") as f:
        card = json.load(f)
    net = qblif.compile(args.model)
    g = net.ir.graph
    steps = int(g["timesteps"])
    x, y = load_dataset(card["dataset"], "test", args.samples)
    frames = quantize_intensity(x, int(g["input_bits"])).reshape((len(x),) + net.input_shape)
    n = len(frames)
    rows, notes = [], []
    load_before = _load()

    def engine_row(label, eng):
        eng.run(frames[:64], steps, layers_to_record=[net.output_index])      # warm-up
        out, wall, cpu = _timed(lambda: eng.run(frames, steps,
                                                layers_to_record=[net.output_index]))
        pred = out[net.output_index].reshape(n, steps, -1).sum(1).argmax(1)
        acc = float((pred == y).mean())
        rows.append((label, n, wall, cpu, acc))
        return acc, wall

    results = {}
    for th in args.threads:
        results[f"cpu{th}"] = engine_row(f"exact engine, CPU, {th} thread(s)",
                                         ExactEngine(net.ir, threads=th))
    if torch.cuda.is_available():
        eng = ExactEngine(net.ir, device="cuda")
        results["cuda"] = engine_row(f"exact engine, {torch.cuda.get_device_name()}", eng)

    # baseline: the numpy oracle on the first images, extrapolated; and the engine equals it
    m = min(args.baseline_samples, n)
    ref, wall, cpu = _timed(lambda: forward(net.ir, frames[:m], steps))
    rows.append((f"qblif.exact.oracle (numpy oracle), {m} images, x{n / m:.0f}", n, wall * n / m,
                 cpu * n / m, None))
    got = ExactEngine(net.ir).run(frames[:m], steps)
    same = all(np.array_equal(got[i], ref[i]) for i in ref)
    notes.append(f"engine == qblif.exact.oracle on every layer and step of the first {m} images: "
                 f"{'yes' if same else 'NO'}")
    if args.slayer_samples:
        from qblif.training.train import evaluate_file
        k = min(args.slayer_samples, n)
        r, wall, cpu = _timed(lambda: evaluate_file(args.model, test_limit=k))
        rows.append((f"SLAYER quantized forward (qblif evaluate --engine slayer), {k} images, "
                     f"x{n / k:.0f}", n, wall * n / k, cpu * n / k, None))

    evaluate = None
    if not args.no_evaluate:
        cmd = [sys.executable, "-m", "qblif.cli.main", "evaluate", args.model]
        if args.samples:
            cmd += ["--test-limit", str(args.samples)]
        env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
        evaluate = time.perf_counter() - t0
        line = (proc.stdout.strip().splitlines() or [proc.stderr.strip()])[-1]
        rows.append(("`qblif evaluate` (exact engine, T + latency steps, statistics), "
                     "a fresh process", n, evaluate, None, None))
        notes.append(f"`qblif evaluate` printed: {line}")
    load_after = _load()

    card_acc = float(card["test_accuracy"])
    lines = [
        "# Exact engine benchmark",
        "",
        f"Machine: {platform.platform()}, {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} logical cores, Python {platform.python_version()}, torch "
        f"{torch.__version__}. Load average (1/5/15 min) before: {load_before}; after: "
        f"{load_after} (the machine is shared; CPU s counts every thread of this process). "
        f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')}.",
        "",
        f"Model: {os.path.basename(args.model)}, {n} {card['dataset']} test images, T = {steps} "
        f"steps each; model card accuracy {card_acc * 100:.2f}% "
        f"({card.get('test_samples')} images).",
        "",
        "| run | images | wall s | CPU s | images/s | accuracy |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for label, k, wall, cpu, acc in rows:
        lines.append(f"| {label} | {k} | {wall:.2f} | {'' if cpu is None else f'{cpu:.2f}'} | "
                     f"{k / wall:,.0f} | {'' if acc is None else f'{acc * 100:.2f}%'} |")
    lines.append("")
    best = min(v[1] for k, v in results.items() if k.startswith("cpu"))
    full = n == 10000
    lines.append(f"- Target: the full test set through the exact engine in <= {TARGET_ENGINE_S:.0f} s "
                 f"on this machine: best CPU run {best:.2f} s of wall time "
                 f"({'met' if best <= TARGET_ENGINE_S else 'missed'}"
                 f"{'' if full else ', on a partial test set'}).")
    if evaluate is not None:
        lines.append(f"- Target: `qblif evaluate` of the full test set in <= "
                     f"{TARGET_EVALUATE_S:.0f} s: {evaluate:.2f} s "
                     f"({'met' if evaluate <= TARGET_EVALUATE_S else 'missed'}"
                     f"{'' if full else ', on a partial test set'}).")
    for k, (acc, _) in results.items():
        if full:
            lines.append(f"- {k}: accuracy {acc * 100:.2f}% "
                         f"{'equals' if round(acc, 4) == round(card_acc, 4) else 'DIFFERS FROM'} "
                         f"the card's {card_acc * 100:.2f}%")
    lines += [f"- {s}" for s in notes]
    text = "\n".join(lines) + "\n"
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    atomic_write_text(args.out, text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
