"""Exact engine: the coverage kinds in the run modes (docs/exact_engine.md, "Run modes, ALIF
and RF"). For each lava-dl block net with a coverage kind (tests/lavadl_nets.py, seed 0), a
stream per sample (a bias frame per sample for the bias-driven input net), ``--samples``
samples of T = ``--steps`` steps: wall time of :class:`qblif.exact.ExactEngine` (one
thread) continuous as a timeline (``reset="none"``), with the sample reset as a timeline
(reset segments as a batch) and in per-sample batches (windows), against the numpy oracle
(``qblif.exact.oracle.simulate``, continuous) in the same run; the engine's continuous timeline
must equal the oracle's on every layer and step. Writes bench/results/engine_kinds_modes.md
(atomic) and prints it.

    python bench/bench_engine_kinds_modes.py [--samples 200] [--steps 10]
"""
from __future__ import annotations

import argparse
import glob
import os
import pathlib
import platform
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path[:0] = [os.path.join(ROOT, "tests")] + sorted(glob.glob(os.path.join(ROOT, "tests", "*", "")))
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")     # as the qblif CLI (qblif/cli/main.py)

import qblif  # noqa: E402
import lavadl_nets as nets  # noqa: E402
from qblif.exact import ExactEngine  # noqa: E402
from qblif.exact.oracle import simulate  # noqa: E402
from qblif.core.fileio import atomic_write_text  # noqa: E402

FEATURES = ("recurrent_delay", "graded", "dense_delay", "conv_delay", "input_neuron", "average")


def _timed(f):
    t = time.perf_counter()
    out = f()
    return out, time.perf_counter() - t


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=200)
    ap.add_argument("--steps", type=int, default=10)
    a = ap.parse_args(argv)
    s, t = a.samples, a.steps
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for f in FEATURES:
            info = nets.make_net(f, 0, pathlib.Path(tmp) / f"{f}.net")
            x = np.stack([nets.make_input(info, i, t) for i in range(s)])
            stream = info["input_kind"] != "bias"
            with qblif.compile(info["path"]) as net:
                eng = ExactEngine(net.ir, threads=1)
                got, none_s = _timed(lambda: eng.run(x, t, stream=stream, reset="none",
                                                     timeline=True))
                _, tl_s = _timed(lambda: eng.run(x, t, stream=stream, timeline=True))
                _, win_s = _timed(lambda: eng.run(x, t, stream=stream))
                want, oracle_s = _timed(lambda: simulate(net.ir, x, t, stream=stream,
                                                         reset="none"))
            same = all(np.array_equal(got[k], want[k]) for k in want if isinstance(k, int))
            if not same:
                raise SystemExit(f"{f}: the engine's timeline differs from the oracle's")
            rows.append(f"| {f} | {none_s:.3f} | {tl_s:.3f} | {win_s:.3f} | {oracle_s:.2f} |")
    text = "\n".join([
        "# Exact engine: coverage kinds in the run modes",
        "",
        f"`python bench/bench_engine_kinds_modes.py --samples {s} --steps {t}`; "
        f"{platform.machine()}, {os.cpu_count()} cores (shared), one engine thread. "
        "Wall seconds; the engine's continuous timeline equals the oracle's on every layer "
        "and step.",
        "",
        "| lava-dl net | engine reset=none timeline | engine reset=sample timeline | "
        "engine reset=sample windows | oracle reset=none |",
        "|---|---|---|---|---|",
        *rows, ""])
    out = os.path.join(ROOT, "bench", "results", "engine_kinds_modes.md")
    atomic_write_text(out, text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
