"""Sample lanes: samples/s through Lava at lanes=1 vs lanes=L, in one run.

``netx_models/MODEL.net`` (``--model``: the digits MLP, default, or fmnist_qblif_conv;
graded, fast models, the file's timesteps), the first ``--samples`` test images of its
dataset (cycled past the end of the set), ``CompiledNetwork.run(frames, T, lanes=L)`` for
each L in ``--lanes``, measured alternately ``--repeats`` times (median). Two figures per L:

* **end to end**: samples / ``last_run["wall_s"]`` (the Lava run, process start-up included:
  what ``qblif run`` pays);
* **steady**: samples per second of Lava stepping alone, from two runs of different length
  (``--samples`` and ``--samples // 2``) on fresh graphs: the difference cancels start-up.

"identical": every layer's counts at each L equal lanes=1's.

    python bench/bench_lanes.py [--model digits_qblif_mlp] [--samples 320] [--lanes 1 8 16]
                                [--repeats 1]

Writes bench/results/lanes_MODEL.md (atomic) and prints it.
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import compiler  # noqa: E402
from compiler.dataset import dataset_frames  # noqa: E402
from qblif_lava.fileio import atomic_write_text  # noqa: E402

DATASETS = {"digits_qblif_mlp": "digits", "fmnist_qblif_conv": "fashion-mnist"}
TARGET = 3.0   # issue 9: digits MLP with lanes, >= 3x lanes=1's samples/s


def _timed(net, frames, steps, lanes):
    out = net.run(frames, steps, lanes=lanes)
    return out, net.last_run["wall_s"], net.last_run["lava_steps"]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", choices=tuple(DATASETS), default="digits_qblif_mlp")
    ap.add_argument("--samples", type=int, default=320)
    ap.add_argument("--lanes", type=int, nargs="+", default=[1, 8, 16])
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--out", default=None, help="default bench/results/lanes_MODEL.md")
    args = ap.parse_args(argv)
    args.out = args.out or os.path.join(ROOT, "bench", "results", f"lanes_{args.model}.md")
    dataset = DATASETS[args.model]
    lanes_list = sorted(set([1] + args.lanes))
    load0 = os.getloadavg()[0]
    with compiler.compile(os.path.join(ROOT, "netx_models", f"{args.model}.net")) as net:
        steps = int(net.ir.graph["timesteps"])
        frames, _ = dataset_frames(net, dataset, args.samples)
        reps = -(-args.samples // len(frames))          # digits' test set has 359 images:
        frames = np.concatenate([frames] * reps)[: args.samples]   # cycle it past that
        half = frames[: len(frames) // 2]
        e2e = {lanes: [] for lanes in lanes_list}
        steady = {lanes: [] for lanes in lanes_list}
        outs, same = {}, {}
        for _ in range(args.repeats):
            for lanes in lanes_list:
                out, wall, _ = _timed(net, frames, steps, lanes)
                _, wall_half, _ = _timed(net, half, steps, lanes)
                e2e[lanes].append(len(frames) / wall)
                # start-up noise can swamp a short difference: nan, reported as "noise"
                steady[lanes].append((len(frames) - len(half)) / (wall - wall_half)
                                     if wall > wall_half else float("nan"))
                outs.setdefault(lanes, out)
        for lanes in lanes_list:
            same[lanes] = all(np.array_equal(outs[lanes][i], outs[1][i]) for i in outs[1])
    base_e, base_s = statistics.median(e2e[1]), statistics.median(steady[1])
    rows = ["| lanes | Lava steps | end to end samples/s | speedup | steady samples/s | "
            "speedup | identical to lanes=1 |", "|---:|---:|---:|---:|---:|---:|---|"]
    for lanes in lanes_list:
        e, s = statistics.median(e2e[lanes]), statistics.median(steady[lanes])
        lava_steps = -(-len(frames) // lanes) * steps + int(net.ir.graph["depth"])
        sd = f"{s:.1f} | {s / base_s:.1f}x" if s == s else "noise | -"
        rows.append(f"| {lanes} | {lava_steps} | {e:.1f} | {e / base_e:.1f}x | {sd} | "
                    f"{'yes' if same[lanes] else 'NO'} |")
    best = max((statistics.median(steady[lanes]) / base_s for lanes in lanes_list),
               key=lambda v: -1 if v != v else v)
    machine = (f"{platform.platform()}, {platform.machine()}, {os.cpu_count()} logical cores, "
               f"Python {platform.python_version()}, numpy {np.__version__}")
    text = "\n".join([
        f"# Sample lanes: {args.model} through Lava", "",
        f"`{args.model}`, graded, fast models, {len(frames)} {dataset} test samples x {steps} "
        f"steps, median of {args.repeats} alternating repeat(s). Machine: {machine}; load "
        f"{load0:.1f} at the start, {os.getloadavg()[0]:.1f} at the end.", "",
        *rows, "",
        (f"Target (issue 9, digits MLP): >= {TARGET:.0f}x lanes=1's samples/s; best steady "
         f"speedup {best:.1f}x: {'met' if best >= TARGET else 'not met'}."
         if args.model == "digits_qblif_mlp" else f"Best steady speedup {best:.1f}x."), ""])
    atomic_write_text(args.out, text)
    print(text)
    return 0 if all(same.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
