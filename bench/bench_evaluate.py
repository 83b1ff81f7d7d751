"""`qblif evaluate` benchmark: the full Fashion-MNIST test set through the shipped conv model,
each run a fresh process, as a user runs it (imports, compile, dataset, engine, statistics).

Variants, run alternately (A B C A B C ...) after one untimed warm-up each (the native kernels
are built once per source into the user's cache):

* ``T``: ``qblif evaluate MODEL`` (T-step windows where they suffice, the default);
* ``T + latency``: ``qblif evaluate MODEL --latency-window`` (what it simulated before);
* with ``--baseline-commit REV``: ``qblif evaluate MODEL`` of that commit's tree (extracted with
  ``git archive`` into a temporary directory, same Python), the code before a change.

Reports, per variant, the median and range of the wall time (start to exit) and of the CPU
time (user + system of the child), the printed line (every variant must print the card's
accuracy), the load average before and after, and the machine. The machine may be shared:
compare only variants of the same run, and read the CPU times where the load is high.

Writes bench/results/evaluate.md (atomic) and prints it.

    python bench/bench_evaluate.py [--repeats 5] [--baseline-commit fb3afa3] [--test-limit N]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from qblif.core.fileio import atomic_write_text  # noqa: E402

MODEL = os.path.join("netx_models", "fmnist_qblif_conv.net")
TARGET_S = 8.0


def _load() -> str:
    return " / ".join(f"{v:.1f}" for v in os.getloadavg())


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def run_once(tree: str, model: str, extra: list, limit) -> tuple:
    """``(wall s, CPU s, last printed line, exit code)`` of one fresh ``qblif evaluate``."""
    cmd = [sys.executable, "-m", "qblif.cli.main", "evaluate", model] + extra
    if limit:
        cmd += ["--test-limit", str(limit)]
    env = dict(os.environ, PYTHONPATH=tree)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=tree)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    line = (proc.stdout.strip().splitlines() or proc.stderr.strip().splitlines() or [""])[-1]
    return wall, cpu, line, proc.returncode


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default=MODEL, help="model file, relative to the tree")
    ap.add_argument("--repeats", type=int, default=5, help="timed runs per variant")
    ap.add_argument("--test-limit", type=int, default=None)
    ap.add_argument("--baseline-commit", default=None,
                    help="also time this commit's `qblif evaluate` (git archive of the tree)")
    ap.add_argument("--no-latency-window", action="store_true",
                    help="leave out the --latency-window variant")
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "results", "evaluate.md"))
    args = ap.parse_args(argv)

    variants = [("T (this tree)", ROOT, [])]
    if not args.no_latency_window:
        variants.append(("T + latency (this tree, --latency-window)", ROOT, ["--latency-window"]))
    tmp = None
    try:
        if args.baseline_commit:
            rev = subprocess.run(["git", "rev-parse", "--short", args.baseline_commit], cwd=ROOT,
                                 capture_output=True, text=True, check=True).stdout.strip()
            tmp = tempfile.mkdtemp(prefix="qblif-baseline-")
            archive = subprocess.run(["git", "archive", rev], cwd=ROOT, capture_output=True,
                                     check=True).stdout
            subprocess.run(["tar", "-x", "-C", tmp], input=archive, check=True)
            variants.append((f"T (commit {rev})", tmp, []))
        for name, tree, extra in variants:                 # warm-up: kernel builds, page cache
            run_once(tree, args.model, extra, args.test_limit)
        load_before = _load()
        runs = {name: [] for name, _, _ in variants}
        for _ in range(args.repeats):
            for name, tree, extra in variants:
                runs[name].append(run_once(tree, args.model, extra, args.test_limit))
        load_after = _load()
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)

    card_path = os.path.join(ROOT, os.path.splitext(args.model)[0] + ".json")
    card_acc = None
    if os.path.isfile(card_path):
        with open(card_path) as f:
            card_acc = json.load(f).get("test_accuracy")
    lines = [
        "# `qblif evaluate` benchmark",
        "",
        f"Machine: {_cpu_model()}, {os.cpu_count()} logical cores, {platform.platform()}, "
        f"Python {platform.python_version()}. Load average (1/5/15 min) before the timed runs: "
        f"{load_before}; after: {load_after} (a shared machine: only variants of this run "
        f"compare).",
        "",
        f"Model: {args.model}, {args.test_limit or 'all'} test images, each run a fresh "
        f"process; {args.repeats} timed runs per variant, alternating, after one warm-up each.",
        "",
        "| variant | median wall s | wall s (min-max) | median CPU s | CPU s (min-max) | exit |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    med = {}
    for name, rs in runs.items():
        walls, cpus = [r[0] for r in rs], [r[1] for r in rs]
        med[name] = statistics.median(walls)
        lines.append(f"| {name} | {med[name]:.2f} | {min(walls):.2f}-{max(walls):.2f} | "
                     f"{statistics.median(cpus):.2f} | {min(cpus):.2f}-{max(cpus):.2f} | "
                     f"{','.join(sorted({str(r[3]) for r in rs}))} |")
    lines.append("")
    first = variants[0][0]
    for name in runs:
        if name != first:
            lines.append(f"- {first} / {name}: {med[first] / med[name]:.2f}x (median wall)")
    if not args.test_limit:
        lines.append(f"- Target: <= {TARGET_S:.0f} s for the full test set: median "
                     f"{med[first]:.2f} s ({'met' if med[first] <= TARGET_S else 'missed'} "
                     f"in this run, at the load above).")
    want = f"{card_acc * 100:.2f}%" if card_acc is not None else None
    for name, rs in runs.items():
        printed = {r[2] for r in rs}
        ok = want is None or all(want in p for p in printed)
        for p in sorted(printed):
            lines.append(f"- {name} printed: {p}")
        if want is not None and not args.test_limit:
            lines.append(f"  - the card's accuracy {want}: {'yes' if ok else 'NO'}")
    text = "\n".join(lines) + "\n"
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    atomic_write_text(args.out, text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
