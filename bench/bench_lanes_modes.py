"""Sample lanes in the run modes they cover: samples/s at lanes=1 vs lanes=L, in one run.

``netx_models/MODEL.net`` (default the digits MLP; graded, fast models), ``--samples``
random inputs (seeded) of ``--steps`` steps, for each mode: static frames, an input stream
(``(S, T, *shape)``), ``record_uv``, ``reset="netx"`` on the sample windows
(``reset_interval`` 2, offset 1) and ``timeline=True``. Per mode the runs at lanes 1 and L
alternate ``--repeats`` times (median); "end to end" is samples / ``last_run["wall_s"]``
(the Lava run, start-up included). "identical": every returned array at L equals lanes=1's.

    python bench/bench_lanes_modes.py [--model digits_qblif_mlp] [--samples 128] [--steps 4]
                                      [--lanes 16] [--repeats 1]

Writes bench/results/lanes_modes_MODEL.md (atomic) and prints it.
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
sys.path.insert(0, os.path.join(ROOT, "bench"))
import qblif  # noqa: E402
from bench_lanes import _uptime  # noqa: E402
from qblif.core.fileio import atomic_write_text  # noqa: E402


def modes(net, rng, samples: int, steps: int) -> dict:
    """name -> (inputs, run arguments)."""
    hi = 2 ** int(net.ir.graph["input_bits"])
    frames = rng.integers(0, hi, size=(samples,) + tuple(net.input_shape))
    stream = rng.integers(0, hi, size=(samples, steps) + tuple(net.input_shape))
    return {"static frames": (frames, {}),
            "input stream": (stream, {}),
            "record_uv": (frames, dict(record_uv=True)),
            "reset='netx' (R=2, o=1)": (frames, dict(reset="netx", reset_interval=2,
                                                     reset_offset=1)),
            "timeline=True": (frames, dict(timeline=True))}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="digits_qblif_mlp")
    ap.add_argument("--samples", type=int, default=128)
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--lanes", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    path = os.path.join(ROOT, "netx_models", args.model + ".net")
    out_path = args.out or os.path.join(ROOT, "bench", "results",
                                        f"lanes_modes_{args.model}.md")
    up0 = _uptime()
    rows = []
    with qblif.compile(path) as net:
        for name, (inputs, kw) in modes(net, np.random.default_rng(0), args.samples,
                                        args.steps).items():
            walls, lava_steps, same = {1: [], args.lanes: []}, {}, True
            for _ in range(args.repeats):
                ref = None
                for lanes in (1, args.lanes):
                    out = net.run(inputs, args.steps, lanes=lanes, **kw)
                    walls[lanes].append(net.last_run["wall_s"])
                    lava_steps[lanes] = net.last_run["lava_steps"]
                    if ref is None:
                        ref = out
                    else:
                        same &= set(out) == set(ref) and all(
                            np.array_equal(out[k], ref[k]) for k in ref)
            sps = {k: args.samples / statistics.median(v) for k, v in walls.items()}
            rows.append(f"| {name} | {lava_steps[1]} / {lava_steps[args.lanes]} | "
                        f"{sps[1]:.1f} | {sps[args.lanes]:.1f} | "
                        f"{sps[args.lanes] / sps[1]:.1f}x | {'yes' if same else 'NO'} |")
            if not same:
                print(f"{name}: lanes={args.lanes} differs from lanes=1", file=sys.stderr)
    text = "\n".join([
        f"# Sample lanes by run mode: {args.model}", "",
        f"{args.samples} samples x {args.steps} steps, lanes 1 vs {args.lanes}, median of "
        f"{args.repeats}; machine: {platform.machine()}, {os.cpu_count()} CPUs "
        f"(shared). `uptime` before: `{up0}`; after: `{_uptime()}`.", "",
        f"| mode | Lava steps (1 / {args.lanes}) | samples/s lanes=1 | "
        f"samples/s lanes={args.lanes} | speedup | identical |",
        "|---|---:|---:|---:|---:|---|", *rows, ""])
    atomic_write_text(out_path, text)
    print(text)
    return 0 if all(r.endswith("yes |") for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
