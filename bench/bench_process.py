"""Wall time per Lava step: a QBLIF population vs Lava's LIF population of the same size.

Both run under the CPU ``fixed_pt`` models in this one script, alternating, each
driven by the same bias (so both spike) with its input port idle. A warm-up run
absorbs compilation and process start-up; the timed run is ``--steps`` steps; the
median of ``--repeats`` alternating measurements is reported. Writes a Markdown
table to bench/results/process.md (and prints it).

    python bench/bench_process.py [--steps 2000] [--repeats 3]
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

from lava.magma.core.run_conditions import RunSteps
from lava.magma.core.run_configs import Loihi2SimCfg
from lava.proc.lif.process import LIF

from qblif import QBLIF
from qblif.core.fileio import atomic_write_text
from qblif.lava.session import lava_session

COMMON = dict(du=400, dv=200, vth=40, bias_mant=300, bias_exp=3)


def time_per_step(make, steps: int) -> float:
    proc = make()
    cfg = Loihi2SimCfg(select_tag="fixed_pt")
    with lava_session(proc):
        proc.run(condition=RunSteps(num_steps=20), run_cfg=cfg)     # compile + start + warm-up
        t0 = time.perf_counter()
        proc.run(condition=RunSteps(num_steps=steps), run_cfg=cfg)
        return (time.perf_counter() - t0) / steps


def main(argv=None) -> str:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[100, 1000, 10000])
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--max-burst", type=int, default=4)
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results", "process.md"))
    args = ap.parse_args(argv)
    rows = []
    for n in args.sizes:
        lif_t, qb_t = [], []
        for _ in range(args.repeats):
            lif_t.append(time_per_step(lambda: LIF(shape=(n,), **COMMON), args.steps))
            qb_t.append(time_per_step(lambda: QBLIF(shape=(n,), max_burst=args.max_burst,
                                                    **COMMON), args.steps))
        lif, qb = statistics.median(lif_t), statistics.median(qb_t)
        rows.append((n, lif * 1e3, qb * 1e3, qb / lif))
        print(f"N={n}: LIF {lif * 1e3:.3f} ms/step, QBLIF {qb * 1e3:.3f} ms/step, ratio {qb / lif:.3f}",
              flush=True)
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    lines = [f"Lava fixed_pt, {args.steps} timed steps, median of {args.repeats}, K={args.max_burst}; "
             f"machine: {machine}", "",
             "| N | LIF ms/step | QBLIF ms/step | QBLIF/LIF |", "|---:|---:|---:|---:|"]
    lines += [f"| {n:,} | {a:.3f} | {b:.3f} | {r:.2f} |" for n, a, b, r in rows]
    table = "\n".join(lines) + "\n"
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    atomic_write_text(args.out, table)
    print(table)
    return table


if __name__ == "__main__":
    main()
