"""Exact engine in the run modes (docs/exact_engine.md, "Run modes, ALIF and RF"): wall time
of :class:`qblif.exact.ExactEngine` against the numpy oracle (``qblif.exact.oracle``) in
the same run, each mode:

* ``fmnist_qblif_conv`` (test images, T = 4): ``reset="sample"`` (per-sample batches),
  ``reset="none"`` (continuous, global timeline), ``reset="netx"`` (interval 4, offset 1);
* ``digits_qblif_mlp`` fed Bernoulli spike streams (rate = intensity / 16, T = 8):
  ``reset="sample"`` (per-sample batches of streams) and ``reset="none"``;
* a random ALIF network and a random RF network (tests/test_coverage_modes.py builders): one
  continuous stream of ``--stream-steps`` steps (their step loop in torch).

The oracle runs ``--baseline-samples`` samples (or steps), extrapolated linearly; the engine's
counts on those must equal the oracle's on every layer and step. Writes
bench/results/engine_modes.md (atomic) and prints it.

    python bench/bench_engine_modes.py [--samples 1000] [--baseline-samples 20]
                                       [--stream-steps 2000]
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
from qblif.exact import ExactEngine  # noqa: E402
from qblif.exact.oracle import forward  # noqa: E402
from qblif.core.data import load_dataset  # noqa: E402
from qblif.core.encoding import quantize_intensity  # noqa: E402
from qblif.core.fileio import atomic_write_text  # noqa: E402


def _timed(f):
    t0, c0 = time.perf_counter(), time.process_time()
    out = f()
    return out, time.perf_counter() - t0, time.process_time() - c0


def _same(a, b) -> bool:
    return set(a) == set(b) and all(np.array_equal(a[k], b[k]) for k in b)


def _row(rows, what, n, unit, eng, ora, n_ora, same):
    rows.append(f"| {what} | {n} {unit} | {eng[0]:.3f} | {eng[1]:.3f} | "
                f"{ora * n / n_ora:.2f} (from {n_ora}) | {ora * n / n_ora / eng[0]:.1f}x | "
                f"{'yes' if same else 'NO'} |")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--samples", type=int, default=1000)
    ap.add_argument("--baseline-samples", type=int, default=20)
    ap.add_argument("--stream-steps", type=int, default=2000)
    args = ap.parse_args(argv)
    rows = []
    load0 = os.getloadavg()
    n, nb = args.samples, args.baseline_samples

    with qblif.compile(os.path.join(ROOT, "netx_models", "fmnist_qblif_conv.net")) as net:
        x, _ = load_dataset(net.ir.graph["dataset"], "test", n)
        frames = quantize_intensity(x, int(net.ir.graph["input_bits"])).reshape(
            (n,) + net.input_shape)
        eng = ExactEngine(net.ir)
        for m in (dict(reset="sample"), dict(reset="none"),
                  dict(reset="netx", reset_interval=4, reset_offset=1)):
            _, w, c = _timed(lambda: eng.run(frames, 4, **m))
            small = eng.run(frames[:nb], 4, **m)
            ref, wo, _ = _timed(lambda: forward(net.ir, frames[:nb], 4, **m))
            _row(rows, f"fmnist_qblif_conv, frames, {m}", n, "images", (w, c), wo, nb,
                 _same(small, ref))

    with qblif.compile(os.path.join(ROOT, "netx_models", "digits_qblif_mlp.net")) as net:
        x, _ = load_dataset(net.ir.graph["dataset"], "test", n)
        q = quantize_intensity(x, 4).reshape((len(x),) + net.input_shape)
        rng = np.random.default_rng(0)
        spikes = (rng.random((len(q), 8) + net.input_shape) < q[:, None] / 16).astype(np.int32)
        eng = ExactEngine(net.ir)
        for m in (dict(reset="sample"), dict(reset="none")):
            _, w, c = _timed(lambda: eng.run(spikes, 8, stream=True, **m))
            small = eng.run(spikes[:nb], 8, stream=True, **m)
            ref, wo, _ = _timed(lambda: forward(net.ir, spikes[:nb], 8, stream=True, **m))
            _row(rows, f"digits_qblif_mlp, spike streams, {m}", len(q), "samples", (w, c), wo,
                 nb, _same(small, ref))

    from test_coverage_modes import _alif_net, _rf_net
    tmp = pathlib.Path(tempfile.mkdtemp())
    steps, sb = args.stream_steps, max(1, args.stream_steps // 10)
    rng = np.random.default_rng(1)
    path, shape = _alif_net(tmp, rng)
    for what, p, bits, x in (
            ("ALIF net 6-5-4", path, None, rng.integers(0, 3, size=(1, steps) + shape)),
            ("RF net 6-5(RF)-4", _rf_net(tmp, rng), 1,
             (rng.random((1, steps, 6)) < 0.4).astype(int))):
        with qblif.compile(p, input_bits=bits) as net:
            eng = ExactEngine(net.ir)
            _, w, c = _timed(lambda: eng.run(x, steps, stream=True, reset="none"))
            small = eng.run(x[:, :sb], sb, stream=True, reset="none")
            ref, wo, _ = _timed(lambda: forward(net.ir, x[:, :sb], sb, stream=True,
                                                reset="none"))
            _row(rows, f"{what}, one stream, reset='none'", steps, "steps", (w, c), wo, sb,
                 _same(small, ref))

    import torch
    head = (f"Machine: {platform.platform()}, {os.cpu_count()} logical cores, Python "
            f"{platform.python_version()}, torch {torch.__version__}. Load average before: "
            f"{' / '.join(f'{v:.1f}' for v in load0)}; after: "
            f"{' / '.join(f'{v:.1f}' for v in os.getloadavg())} (the machine is shared). "
            f"Engine: CPU, {ExactEngine(net.ir).threads} thread(s), native kernel where "
            "available.\n\n"
            "| run | size | engine wall s | engine CPU s | oracle s (extrapolated) | "
            "speed-up | engine == oracle |\n|---|---:|---:|---:|---:|---:|---|\n")
    text = "# Exact engine in the run modes\n\n" + head + "\n".join(rows) + "\n"
    out = os.path.join(ROOT, "bench", "results", "engine_modes.md")
    atomic_write_text(out, text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
