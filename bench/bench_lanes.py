"""Sample lanes: samples/s through Lava at lanes=1 vs lanes=L, in one run.

``netx_models/MODEL.net`` (``--model``: the digits MLP, default, or fmnist_qblif_conv;
graded, fast models, the file's timesteps), the first ``--samples`` test images of its
dataset (cycled past the end of the set), ``CompiledNetwork.run(frames, T, lanes=L)`` for
each L in ``--lanes``, measured alternately ``--repeats`` times (median). Two figures per L:

* **end to end**: samples / ``last_run["wall_s"]`` (the Lava run, process start-up included:
  what ``qblif run`` pays);
* **steady**: samples per second of Lava stepping alone, from two runs of different length
  (``--samples`` and ``--samples // 2``) on fresh graphs: the difference cancels start-up.
* **Lava CPU-ms per sample-step**: the CPU time of all Lava worker processes (from /proc)
  during the first run, per sample and step: what the lanes save, and less sensitive to the
  other jobs on a shared machine than the wall-clock figures.

"identical": every layer's counts at each L equal lanes=1's.

``--full-set``: then the whole test set (``--full-samples``, default all of it) in one run at
``--full-lanes`` (default: the L with the best end-to-end figure), the output layer recorded
(as ``predict``), beside lanes=1 on the first ``--samples // 2`` images recorded the same
way (the in-run baseline, extrapolated to the set); the big run's first outputs must equal
the baseline's. ``uptime`` is recorded before and after.

    python bench/bench_lanes.py [--model digits_qblif_mlp] [--samples 320] [--lanes 1 8 16]
                                [--repeats 1] [--full-set [--full-lanes L]]

Writes bench/results/lanes_MODEL.md (atomic) and prints it.
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

sys.path.insert(0, os.path.join(ROOT, "bench"))
import qblif  # noqa: E402
from bench_fast import _children_cpu  # noqa: E402
from qblif.core.frames import dataset_frames  # noqa: E402
from qblif.core.fileio import atomic_write_text  # noqa: E402

DATASETS = {"digits_qblif_mlp": "digits", "fmnist_qblif_conv": "fashion-mnist"}
TARGET = 3.0   # issue 9: digits MLP with lanes, >= 3x lanes=1's samples/s


def _uptime() -> str:
    """``uptime``'s line (the machine's load), or the load averages where it is missing."""
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "load average: " + ", ".join(f"{v:.2f}" for v in os.getloadavg())


def full_set(net, dataset, steps, lanes, n_full, base_frames) -> list:
    """The whole test set at ``lanes`` (output layer only) and lanes=1 on ``base_frames``
    (the in-run baseline); returns the markdown lines of the result."""
    from qblif.core.frames import accuracy
    last = net.output_index
    up0 = _uptime()
    base = net.run(base_frames, steps, lanes=1, layers_to_record=[last])
    base_wall = net.last_run["wall_s"]
    frames, labels = dataset_frames(net, dataset, n_full)
    t0 = time.perf_counter()
    out = net.run(frames, steps, lanes=lanes, layers_to_record=[last])
    call_s = time.perf_counter() - t0
    run = dict(net.last_run)
    up1 = _uptime()
    same = np.array_equal(out[last][:len(base_frames)], base[last])
    acc = accuracy(net, out, labels)
    n, nb = len(frames), len(base_frames)
    return [
        f"## The whole {dataset} test set through Lava", "",
        f"`uptime` before: `{up0}`; after: `{up1}`.", "",
        "| run | samples | lanes | Lava steps | Lava run s | run() call s | samples/s | "
        f"time for {n} samples |", "|---|---:|---:|---:|---:|---:|---:|---:|",
        f"| baseline (output layer only) | {nb} | 1 | {nb * steps + int(net.ir.graph['depth'])} "
        f"| {base_wall:.1f} | - | {nb / base_wall:.1f} | {n * base_wall / nb:.0f} s "
        "(extrapolated) |",
        f"| whole set (output layer only) | {n} | {lanes} | {run['lava_steps']} | "
        f"{run['wall_s']:.1f} | {call_s:.1f} | {n / run['wall_s']:.1f} | "
        f"{run['wall_s']:.1f} s (Lava run), {call_s:.1f} s (run() call) |", "",
        f"Accuracy {acc:.4f} on {n} images; the first {nb} outputs "
        f"{'equal' if same else 'DIFFER FROM'} the lanes=1 baseline's. Speedup over the "
        f"baseline {(n / run['wall_s']) / (nb / base_wall):.1f}x. Target (issue 9): the test "
        "set in <= 60 s through Lava: "
        + (("met" if call_s <= 60 else "not met") if n >= 10_000 else "n/a (not the whole set)")
        + " (run() call: emission, Lava start-up, the run and the read-out).", ""], same


class _CpuWatch:
    """CPU seconds of this process's children (Lava's workers) over a ``with`` block, polled
    every 50 ms (a worker's last 50 ms before it exits can be missed)."""

    def __enter__(self):
        import threading
        self.seen, self._stop = {}, threading.Event()

        def poll():
            while not self._stop.is_set():
                for pid, cpu in _children_cpu().items():
                    self.seen[pid] = max(self.seen.get(pid, 0.0), cpu)
                self._stop.wait(0.05)
        self._thread = threading.Thread(target=poll, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.cpu_s = sum(self.seen.values())


def _timed(net, frames, steps, lanes, record=None):
    """(output, Lava wall s, Lava steps, Lava workers' CPU s) of one run."""
    with _CpuWatch() as watch:
        out = net.run(frames, steps, lanes=lanes, layers_to_record=record)
    return out, net.last_run["wall_s"], net.last_run["lava_steps"], watch.cpu_s


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", choices=tuple(DATASETS), default="digits_qblif_mlp")
    ap.add_argument("--samples", type=int, default=320)
    ap.add_argument("--lanes", type=int, nargs="+", default=[1, 8, 16])
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--out", default=None, help="default bench/results/lanes_MODEL.md")
    ap.add_argument("--record", choices=("all", "output"), default="all",
                    help="layers recorded in the table's runs: every neuron layer (default) "
                         "or the output layer only (as predict)")
    ap.add_argument("--full-set", action="store_true",
                    help="then the whole test set at the best (or --full-lanes) L")
    ap.add_argument("--full-lanes", type=int, default=None)
    ap.add_argument("--full-samples", type=int, default=10**9,
                    help="images of the full-set run (default: the whole test set)")
    args = ap.parse_args(argv)
    args.out = args.out or os.path.join(ROOT, "bench", "results", f"lanes_{args.model}.md")
    dataset = DATASETS[args.model]
    lanes_list = sorted(set([1] + args.lanes))
    load0 = os.getloadavg()[0]
    with qblif.compile(os.path.join(ROOT, "netx_models", f"{args.model}.net")) as net:
        steps = int(net.ir.graph["timesteps"])
        frames, _ = dataset_frames(net, dataset, args.samples)
        reps = -(-args.samples // len(frames))          # digits' test set has 359 images:
        frames = np.concatenate([frames] * reps)[: args.samples]   # cycle it past that
        half = frames[: len(frames) // 2]
        record = None if args.record == "all" else [net.output_index]
        e2e = {lanes: [] for lanes in lanes_list}
        steady = {lanes: [] for lanes in lanes_list}
        cpu = {lanes: [] for lanes in lanes_list}
        outs, same = {}, {}
        for _ in range(args.repeats):
            for lanes in lanes_list:
                out, wall, _, cpu_s = _timed(net, frames, steps, lanes, record)
                _, wall_half, _, _ = _timed(net, half, steps, lanes, record)
                e2e[lanes].append(len(frames) / wall)
                cpu[lanes].append(cpu_s / (len(frames) * steps) * 1e3)
                # start-up noise can swamp a short difference: nan, reported as "noise"
                steady[lanes].append((len(frames) - len(half)) / (wall - wall_half)
                                     if wall > wall_half else float("nan"))
                outs.setdefault(lanes, out)
        for lanes in lanes_list:
            same[lanes] = all(np.array_equal(outs[lanes][i], outs[1][i]) for i in outs[1])
        full, full_same = [], True
        if args.full_set:
            best_l = args.full_lanes or max(lanes_list, key=lambda v: statistics.median(e2e[v]))
            full, full_same = full_set(net, dataset, steps, best_l, args.full_samples, half)
    base_e, base_s = statistics.median(e2e[1]), statistics.median(steady[1])
    rows = ["| lanes | Lava steps | end to end samples/s | speedup | steady samples/s | "
            "speedup | Lava CPU-ms per sample-step | identical to lanes=1 |",
            "|---:|---:|---:|---:|---:|---:|---:|---|"]
    for lanes in lanes_list:
        e, s = statistics.median(e2e[lanes]), statistics.median(steady[lanes])
        lava_steps = -(-len(frames) // lanes) * steps + int(net.ir.graph["depth"])
        sd = f"{s:.1f} | {s / base_s:.1f}x" if s == s else "noise | -"
        rows.append(f"| {lanes} | {lava_steps} | {e:.1f} | {e / base_e:.1f}x | {sd} | "
                    f"{statistics.median(cpu[lanes]):.2f} | "
                    f"{'yes' if same[lanes] else 'NO'} |")
    best = max((statistics.median(steady[lanes]) / base_s for lanes in lanes_list),
               key=lambda v: -1 if v != v else v)
    machine = (f"{platform.platform()}, {platform.machine()}, {os.cpu_count()} logical cores, "
               f"Python {platform.python_version()}, numpy {np.__version__}")
    text = "\n".join([
        f"# Sample lanes: {args.model} through Lava", "",
        f"`{args.model}`, graded, fast models, {len(frames)} {dataset} test samples x {steps} "
        f"steps, {'every layer' if args.record == 'all' else 'the output layer'} recorded, "
        f"median of {args.repeats} alternating repeat(s). Machine: {machine}; load "
        f"{load0:.1f} at the start, {os.getloadavg()[0]:.1f} at the end.", "",
        *rows, "",
        (f"Target (issue 9, digits MLP): >= {TARGET:.0f}x lanes=1's samples/s; best steady "
         f"speedup {best:.1f}x: {'met' if best >= TARGET else 'not met'}."
         if args.model == "digits_qblif_mlp" else f"Best steady speedup {best:.1f}x."), "",
        *full])
    atomic_write_text(args.out, text)
    print(text)
    return 0 if all(same.values()) and full_same else 1


if __name__ == "__main__":
    sys.exit(main())
