"""Soak benchmark (issue 10, D12): many compile/run cycles in one process.

Per cycle: compile ``netx_models/digits_qblif_mlp.net``, run ``--samples`` test images for
T steps in Lava (supervised, :mod:`qblif.lava.session`), then record this process's
resident memory (RSS, MB), live child processes, threads, open file descriptors, the
/dev/shm segments this process still maps and the ``qblif-run-*`` directories left in TMPDIR.
``--mode lava`` runs the same process graph size with plain Lava instead (RingBuffer source ->
Dense -> LIF -> RingBuffer sink, ``proc.run``/``proc.stop``), the upstream baseline.
``--trace`` also compares ``tracemalloc`` snapshots of cycle ``--warmup`` and the last cycle
and prints the 12 allocation sites that grew most (where a per-cycle growth comes from).

    python bench/bench_soak.py --cycles 100 [--mode qblif|lava] [--trace] [--out FILE.json]

Prints one line per cycle and a summary: RSS slope (MB/cycle, least squares over the cycles
after the warm-up) and the maxima of the leak counters. Results: docs/hardening.md.
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
MODEL = ROOT / "netx_models" / "digits_qblif_mlp.net"


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2 ** 20


def live_children() -> int:
    """Live children of this process (the test harness's count, resource tracker excluded)."""
    sys.path.insert(0, str(ROOT / "tests"))
    from lava_harness import child_pids
    return len(child_pids())


def mapped_shm() -> int:
    with open("/proc/self/maps") as f:
        return len({line.split()[-1] for line in f if "/dev/shm/" in line})


def run_dirs() -> int:
    """``qblif-run-<this pid>-*`` directories left in TMPDIR."""
    mine = f"qblif-run-{os.getpid()}-"
    return sum(d.startswith(mine) for d in os.listdir(tempfile.gettempdir()))


def cycle_qblif(frames, steps):
    from qblif import compile as compile_net
    with compile_net(MODEL) as net:
        net.run(frames, steps, layers_to_record=None)


def cycle_lava(frames, steps):
    """Plain Lava, no qblif code in the loop: source -> Dense -> LIF -> sink (7 processes as
    the digits net: 2 x (Dense, LIF) + source + 2 sinks)."""
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.proc.dense.process import Dense
    from lava.proc.io.sink import RingBuffer as Sink
    from lava.proc.io.source import RingBuffer as Source
    from lava.proc.lif.process import LIF
    total = len(frames) * steps + 2
    data = np.repeat(frames.reshape(len(frames), -1).T, steps, axis=1)
    data = np.pad(data, ((0, 0), (0, total - data.shape[1])))
    src = Source(data=data)
    d1, l1 = Dense(weights=np.ones((128, 64), int)), LIF(shape=(128,), vth=1000, du=4095, dv=0)
    d2, l2 = Dense(weights=np.ones((10, 128), int)), LIF(shape=(10,), vth=1000, du=4095, dv=0)
    s1, s2 = Sink(shape=(128,), buffer=total), Sink(shape=(10,), buffer=total)
    src.s_out.connect(d1.s_in)
    d1.a_out.connect(l1.a_in)
    l1.s_out.connect(d2.s_in)
    d2.a_out.connect(l2.a_in)
    l1.s_out.connect(s1.a_in)
    l2.s_out.connect(s2.a_in)
    src.run(condition=RunSteps(num_steps=total), run_cfg=Loihi2SimCfg(select_tag="fixed_pt"))
    s2.data.get()
    src.stop()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cycles", type=int, default=100)
    ap.add_argument("--samples", type=int, default=2)
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--warmup", type=int, default=10, help="cycles left out of the slope")
    ap.add_argument("--mode", choices=("qblif", "lava"), default="qblif")
    ap.add_argument("--trace", action="store_true", help="tracemalloc growth sites")
    ap.add_argument("--no-release", action="store_true",
                    help="keep Lava's global process/Var registries (the behaviour before the "
                         "D12 fix: qblif.lava.session.release_registry disabled)")
    ap.add_argument("--out", help="write the per-cycle rows as JSON")
    args = ap.parse_args(argv)

    from qblif.core.data import load_dataset
    from qblif.core.encoding import quantize_intensity
    x, _ = load_dataset("digits", "test", limit=args.samples)
    frames = quantize_intensity(x, 4).reshape(args.samples, 64)
    step = cycle_qblif if args.mode == "qblif" else cycle_lava
    if args.no_release:
        import qblif.lava.session as ls
        ls.release_registry = lambda runtime: 0
    if args.trace:
        import tracemalloc
        tracemalloc.start(12)
    rows, snap0 = [], None
    t_start = time.perf_counter()
    for c in range(1, args.cycles + 1):
        t0 = time.perf_counter()
        step(frames, args.steps)
        gc.collect()
        row = dict(cycle=c, seconds=time.perf_counter() - t0, rss_mb=rss_mb(),
                   children=live_children(), threads=threading.active_count(),
                   fds=len(os.listdir("/proc/self/fd")), shm_mapped=mapped_shm(),
                   run_dirs=run_dirs())
        rows.append(row)
        print(" ".join(f"{k}={v:.2f}" if isinstance(v, float) else f"{k}={v}"
                       for k, v in row.items()), flush=True)
        if args.trace and c == args.warmup:
            snap0 = tracemalloc.take_snapshot()
    tail = [r for r in rows if r["cycle"] > args.warmup] or rows
    slope = float(np.polyfit([r["cycle"] for r in tail], [r["rss_mb"] for r in tail], 1)[0]) \
        if len(tail) > 1 else 0.0
    summary = dict(mode=args.mode, release=not args.no_release, cycles=args.cycles,
                   samples=args.samples, steps=args.steps,
                   rss_first_mb=rows[0]["rss_mb"], rss_last_mb=rows[-1]["rss_mb"],
                   rss_slope_mb_per_cycle=slope,
                   max_children=max(r["children"] for r in rows),
                   max_threads=max(r["threads"] for r in rows),
                   fds_first=rows[0]["fds"], fds_last=rows[-1]["fds"],
                   max_shm_mapped=max(r["shm_mapped"] for r in rows),
                   max_run_dirs=max(r["run_dirs"] for r in rows),
                   seconds=time.perf_counter() - t_start)
    print("SUMMARY " + json.dumps(summary))
    if args.trace and snap0 is not None:
        import tracemalloc
        stats = tracemalloc.take_snapshot().compare_to(snap0, "traceback")
        print(f"tracemalloc: top growth between cycle {args.warmup} and {args.cycles}")
        for st in stats[:12]:
            print(f"  {st.size_diff / 1024:+9.1f} KiB {st.count_diff:+6d} blocks")
            for line in st.traceback.format()[-6:]:
                print("     " + line)
    if args.out:
        Path(args.out).write_text(json.dumps(dict(summary=summary, rows=rows), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
