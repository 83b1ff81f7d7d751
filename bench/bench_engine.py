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
  compile, dataset, T steps per image where T-step windows suffice, SynOps statistics);
  alternating ``--evaluate-repeats`` times with the baseline ``evaluate --latency-window``
  (T + latency steps per image, what it simulated before), each in a fresh process.
* baseline ``sparse=False``: the same engine with conv and dense synapses computed by the
  library conv / GEMM and then scanned (the code before issue 22's fused sparse kernel), run
  just before each thread count's engine run (``--no-sparse-baseline`` leaves it out).
* the multiply-add floor: every synaptic product of the run (first layer once per frame, the
  others once per step; conv as the im2col GEMM) as a plain float32 ``torch.mm`` of the same
  sizes, one engine chunk at a time, at the same threads, in the same run: the time this
  machine needs for the run's MACs alone, against which the engine's time is reported: a table
  of engine / floor per thread count, in wall and in CPU seconds (the floor is measured right
  after each engine run, so both see the same load).

The machine may be shared: the table records the load average before and after, and the CPU
seconds of each in-process run (``time.process_time``, all threads; under load, idle spinning of
torch's threads shows up there too).

Writes bench/results/engine.md (atomic) and prints it.

    python bench/bench_engine.py [--samples 10000] [--threads 2 1] [--baseline-samples 100]
                                 [--slayer-samples 0] [--no-evaluate] [--no-sparse-baseline]

(``bench/bench_evaluate.py`` times ``qblif evaluate`` alone, more runs, against a commit.)
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
TARGET_EVALUATE_S = 8.0
TARGET_FLOOR_RATIO = 1.5


def _load() -> str:
    a, b, c = os.getloadavg()
    return f"{a:.1f} / {b:.1f} / {c:.1f}"


def _timed(f):
    w, c = time.perf_counter(), time.process_time()
    r = f()
    return r, time.perf_counter() - w, time.process_time() - c


def gemm_sizes(ir, samples: int, steps: int) -> list:
    """``(rows, inner, cols)`` of every synaptic product of a per-sample run of ``samples``
    frames for ``steps`` steps: dense ``(S*T, in) x (in, out)``, conv as its im2col GEMM
    ``(S*T*H_out*W_out, C_in*kH*kW / groups) x (., C_out)``; the first synaptic layer sees
    the frame, the same on every step, once per sample (as the engine). Pools (adds) are left
    out."""
    out, first = [], True
    for ly in qblif.ir.layers(ir):
        if ly.kind not in ("dense", "conv", "pool"):
            continue
        reps = samples * (1 if first else steps)
        first = False
        if ly.kind == "dense":
            out.append((reps, int(np.prod(ly.in_shape)), int(ly.shape[0])))
        elif ly.kind == "conv":
            w = ly.synapse.weight                      # Lava order (C_out, kW, kH, C_in)
            out.append((reps * int(np.prod(ly.shape[1:])), int(np.prod(w.shape[1:])),
                        int(ly.shape[0])))
    return out


def mac_floor(ir, samples: int, steps: int, threads: int, chunk: int = 256) -> tuple:
    """Seconds of plain float32 ``torch.mm`` for :func:`gemm_sizes`, ``chunk`` samples at a
    time (the engine's chunks keep products in the caches' reach), scaled to ``samples``:
    ``(wall s, CPU s, a short description of each product)``."""
    import torch
    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    total = cpu = 0.0
    desc = []
    for rows, inner, cols in gemm_sizes(ir, chunk, steps):
        a, b = torch.randn(rows, inner), torch.randn(inner, cols)
        torch.mm(a, b)                                  # warm-up
        reps = 3
        t0, c0 = time.perf_counter(), time.process_time()
        for _ in range(reps):
            torch.mm(a, b)
        total += (time.perf_counter() - t0) / reps * samples / chunk
        cpu += (time.process_time() - c0) / reps * samples / chunk
        desc.append(f"{rows * samples // chunk}x{inner}x{cols}")
    torch.set_num_threads(old)
    return total, cpu, desc


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default=MODEL)
    ap.add_argument("--samples", type=int, default=None, help="test images (default all)")
    ap.add_argument("--threads", type=int, nargs="+", default=[2, 1])
    ap.add_argument("--baseline-samples", type=int, default=100)
    ap.add_argument("--slayer-samples", type=int, default=0)
    ap.add_argument("--no-evaluate", action="store_true")
    ap.add_argument("--no-sparse-baseline", action="store_true",
                    help="leave out the engine row with sparse=False")
    ap.add_argument("--evaluate-repeats", type=int, default=2)
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
        return acc, wall, cpu

    results = {}
    for th in args.threads:
        if not args.no_sparse_baseline:             # the engine before the sparse fused synapse
            results[f"dense{th}"] = engine_row(
                f"baseline: exact engine without the sparse fused synapses (library conv / GEMM, "
                f"then the scan; `sparse=False`), CPU, {th} thread(s)",
                ExactEngine(net.ir, threads=th, sparse=False))
        results[f"cpu{th}"] = engine_row(f"exact engine, CPU, {th} thread(s)",
                                         ExactEngine(net.ir, threads=th))
        f_wall, f_cpu, floor_desc = mac_floor(net.ir, n, steps, th)   # the floor, same moment
        results[f"cpu{th}"] += (f_wall, f_cpu)
        if f"dense{th}" in results:
            results[f"dense{th}"] += (f_wall, f_cpu)
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
        env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
        walls = {"T": [], "T + latency": []}
        for _ in range(args.evaluate_repeats):      # alternate: new, baseline, new, ...
            for key, extra in (("T", []), ("T + latency", ["--latency-window"])):
                cmd = [sys.executable, "-m", "qblif.cli.main", "evaluate", args.model] + extra
                if args.samples:
                    cmd += ["--test-limit", str(args.samples)]
                t0 = time.perf_counter()
                proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
                walls[key].append(time.perf_counter() - t0)
                line = (proc.stdout.strip().splitlines() or [proc.stderr.strip()])[-1]
                if len(walls[key]) == 1:
                    notes.append(f"`qblif evaluate {' '.join(extra)}` printed: {line}")
        for key, w in walls.items():
            rows.append((f"`qblif evaluate`{' --latency-window' if key != 'T' else ''} "
                         f"({key} steps per image), a fresh process, best of "
                         f"{' / '.join(f'{v:.2f}' for v in w)} s", n, min(w), None, None))
        evaluate = min(walls["T"])

    for th in args.threads:
        _, _, _, f_wall, f_cpu = results[f"cpu{th}"]
        rows.append((f"multiply-add floor: the run's GEMMs alone "
                     f"({', '.join(floor_desc)}), "
                     f"{th} thread(s)", n, f_wall, f_cpu, None))
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
    for th in args.threads:
        if f"dense{th}" in results:
            b, e = results[f"dense{th}"], results[f"cpu{th}"]
            notes.insert(0, f"{th} thread(s): the sparse fused synapses take the engine from "
                            f"{b[1]:.2f} to {e[1]:.2f} s of wall time ({b[1] / e[1]:.2f}x), "
                            f"{b[2]:.2f} to {e[2]:.2f} CPU s ({b[2] / e[2]:.2f}x), same run")
    lines += ["", "The engine against the multiply-add floor (float32 GEMMs of every synaptic "
              "product, measured right after each engine run, same threads):", "",
              "| threads | floor wall s | engine wall s | **engine / floor (wall)** | "
              "floor CPU s | engine CPU s | engine / floor (CPU) |",
              "|---:|---:|---:|---:|---:|---:|---:|"]
    for th in args.threads:
        for key, what in ((f"dense{th}", " (baseline, sparse=False)"), (f"cpu{th}", "")):
            if key not in results:
                continue
            _, e_wall, e_cpu, f_wall, f_cpu = results[key]
            lines.append(f"| {th}{what} | {f_wall:.2f} | {e_wall:.2f} | "
                         f"**{e_wall / f_wall:.2f}x** | {f_cpu:.2f} | {e_cpu:.2f} | "
                         f"{e_cpu / f_cpu:.2f}x |")
    lines.append("")
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
    th_best = min(args.threads, key=lambda t: results[f"cpu{t}"][1])
    _, e_wall, _, f_wall, _ = results[f"cpu{th_best}"]
    ratio = e_wall / f_wall
    lines.append(f"- The engine against the multiply-add floor: {ratio:.2f}x at {th_best} "
                 f"thread(s) ({e_wall:.2f} s vs {f_wall:.2f} s; target <= {TARGET_FLOOR_RATIO}x: "
                 f"{'met' if ratio <= TARGET_FLOOR_RATIO else 'missed'}).")
    for k, (acc, *_) in results.items():
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
