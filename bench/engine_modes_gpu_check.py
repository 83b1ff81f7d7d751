"""The exact engine's run modes on a CUDA GPU (docs/exact_engine.md, "Run modes, ALIF and
RF"): equal to the CPU engine (which tests/test_exact_engine_modes.py holds equal to the oracle
and to Lava) on streams, every reset mode, windows and timelines, ALIF, RF / RF_IZ, SDNN and
the shipped models; and ``fmnist_qblif_conv`` timed in three modes. Two halves, because a lent
GPU machine may have torch but no Lava (nothing there can compile a NetX file):

    python bench/engine_modes_gpu_check.py prep DATA.pkl.gz    # here: compile, CPU results
    python3 bench/engine_modes_gpu_check.py check DATA.pkl.gz  # on the GPU machine (repo root)

``prep-kinds`` instead prepares the coverage kinds (tests/lavadl_nets.py's kind nets and
tests/test_exact_engine_kinds.py's random kind nets: delays, dense_rec, graded CUBA, average,
bias-driven input) with streams and held frames in every mode (no timing).

``prep`` also asserts that every CPU result equals the numpy oracle. ``check`` runs every case
on CUDA with chunks of 1 sample and the default, compares every layer, step, u and v, prints
the lines (and writes ``$OUT/gpu_modes.txt`` where ``OUT`` is set).
"""
from __future__ import annotations

import glob
import gzip
import os
import pickle
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

MODES = [dict(reset="sample"), dict(reset="none"),
         dict(reset="netx", reset_interval=5, reset_offset=2)]


def _kind_nets(tmp) -> list:
    """The coverage-kind cases for :func:`prep` (``prep-kinds``)."""
    import qblif
    import lavadl_nets
    from test_exact_engine_kinds import RANDOM_NETS
    nets = []
    for f in ("input_neuron", "input_neuron_conv", "recurrent", "recurrent_delay",
              "dense_delay", "conv_delay", "graded", "average"):
        info = lavadl_nets.make_net(f, 0, tmp / f"{f}.net")
        st = np.stack([lavadl_nets.make_input(info, s, 4) for s in (0, 1, 2)])
        if info["input_kind"] == "bias":
            st = np.stack([st, st[::-1], st, st[::-1]], axis=1)
        nets.append((f"{f}-stream", info["path"], None, st, 4, True, MODES, True))
        nets.append((f"{f}-frames", info["path"], None, st[:, 0], 4, False, MODES, True))
    for name, (build, steps) in RANDOM_NETS.items():
        rng = np.random.default_rng(5)
        path = build(tmp, rng)
        with qblif.compile(path, input_bits=4) as net:
            uv = not net.ir.graph["stateful"]
            shape = net.input_shape
        nets.append((f"{name}-stream", path, 4, rng.integers(0, 16, size=(3, steps) + shape),
                     steps, True, MODES, uv))
    return nets


def prep(out_path: str, kinds: bool = False) -> None:
    import pathlib
    import tempfile
    sys.path[:0] = [os.path.join(ROOT, "tests")] + sorted(glob.glob(os.path.join(ROOT, "tests", "*", "")))
    import qblif
    from qblif.exact import ExactEngine
    from qblif.exact.oracle import forward, simulate
    from qblif.core.data import load_dataset
    from qblif.core.encoding import quantize_intensity
    from test_coverage_modes import _alif_net, _rf_net, _stream_net
    from test_exact_engine import _sdnn_nets
    tmp = pathlib.Path(tempfile.mkdtemp())
    nets = []           # (name, path, input_bits, x, steps, stream, modes, record_uv)
    for seed in (0, 1) if not kinds else ():
        for conv in (False, True):
            rng = np.random.default_rng(seed)
            (tmp / f"{seed}{conv}").mkdir()
            path, shape = _stream_net(tmp / f"{seed}{conv}", rng, conv=conv)
            nets.append((f"qblif-{'conv' if conv else 'dense'}-{seed}-stream", path, None,
                         rng.integers(0, 16, size=(3, 4) + shape), 6, True, MODES, True))
            nets.append((f"qblif-{'conv' if conv else 'dense'}-{seed}-frames", path, None,
                         rng.integers(0, 16, size=(3,) + shape), 6, False, MODES, True))
        rng = np.random.default_rng(seed)
        (tmp / f"a{seed}").mkdir()
        path, shape = _alif_net(tmp / f"a{seed}", rng)
        nets.append((f"alif-{seed}", path, None, rng.integers(0, 3, size=(2, 8) + shape), 8,
                     True, MODES[1:2], True))
        for kind in ("RF_PHASE", "RF_IZHIKEVICH"):
            (tmp / f"{kind}{seed}").mkdir()
            nets.append((f"{kind}-{seed}", _rf_net(tmp / f"{kind}{seed}", rng, kind), 1,
                         (rng.random((2, 10, 6)) < 0.4).astype(int), 12, True, MODES[1:2],
                         False))
    for k, (path, shape) in enumerate(_sdnn_nets(tmp) if not kinds else ()):
        rng = np.random.default_rng(k)
        with qblif.compile(path, input_bits=4) as net:
            lo = -16 if net.ir.graph["input_neuron"] == "Delta" else 0
        nets.append((f"sdnn-{k}", path, 4, rng.integers(lo, 16, size=(3, 4) + tuple(shape)), 5,
                     True, MODES, False))
    bench = None
    if kinds:
        nets = _kind_nets(tmp)
    for path in sorted(glob.glob(os.path.join(ROOT, "netx_models", "*.net"))) if not kinds \
            else ():
        rng = np.random.default_rng(3)
        with qblif.compile(path) as net:
            shape = net.input_shape
            x, _ = load_dataset(net.ir.graph["dataset"], "test", 1000)
            fr = quantize_intensity(x, int(net.ir.graph["input_bits"])).reshape(
                (len(x),) + shape)
            if "fmnist_qblif_conv" in path:
                bench = (os.path.basename(path), net.ir, fr.astype(np.uint8), 4, net.output_index)
        name = os.path.basename(path)
        nets.append((f"{name}-frames", path, None, fr[:4], 3, False, MODES[1:], True))
        nets.append((f"{name}-spikes", path, None,
                     (rng.random((3, 3) + shape) < 0.3).astype(int), 4, True, MODES[:2], True))
    cases = []
    for name, path, bits, x, steps, stream, modes, uv in nets:
        with qblif.compile(path, input_bits=bits) as net:
            eng = ExactEngine(net.ir)
            for m in modes:
                for tl in (False, True):
                    kw = dict(m, stream=stream, record_uv=uv, timeline=tl)
                    got = eng.run(x, steps, **kw)
                    ref = (simulate if tl else forward)(net.ir, x, steps, stream=stream,
                                                        record_uv=uv, **m)
                    assert set(got) == set(ref) and all(np.array_equal(got[k], ref[k])
                                                        for k in ref), (name, kw)
                    cases.append((f"{name} {m} timeline={tl}", net.ir, x, steps, kw, got))
    with gzip.open(out_path, "wb", compresslevel=6) as fh:
        pickle.dump(dict(cases=cases, bench=bench), fh)
    print(f"{len(cases)} cases (CPU engine == oracle on each) -> {out_path}")


def compare_cases(cases, device: str, sizes) -> tuple:
    """Run every ``(name, ir, x, steps, run keywords, CPU result)`` case on ``device`` with
    each chunk size in ``sizes`` (None: the default) and compare every layer, step, u and v
    with the CPU result. Returns ``(MISMATCH lines, number of mismatching runs)``."""
    from qblif.exact import ExactEngine
    lines, bad = [], 0
    for name, ir, x, steps, kw, want in cases:
        for bs in sizes:
            try:
                got = ExactEngine(ir, device=device, batch_size=bs).run(x, steps, **kw)
                diff = [k for k in want if k not in got or not np.array_equal(got[k], want[k])]
                diff += sorted(set(got) - set(want), key=str)
            except Exception as e:  # noqa: BLE001  (reported, counted)
                diff = [f"{type(e).__name__}: {e}"]
            if diff:
                bad += 1
                lines.append(f"MISMATCH {name} batch={bs}: {diff[:4]}")
    return lines, bad


def check(in_path: str, device: str = "cuda") -> None:
    d = pickle.load(gzip.open(in_path, "rb"))     # the engine imports no Lava
    import torch
    from qblif.exact import ExactEngine
    lines, bad = compare_cases(d["cases"], device, (1, None))
    lines.insert(0, f"torch {torch.__version__}, device {device}")
    lines.append(f"cases: {len(d['cases'])} x 2 chunk sizes, mismatches: {bad}")
    print("\n".join(lines), flush=True)
    out = os.environ.get("OUT")
    if d["bench"] is None:      # prep-kinds: no timing
        if out:
            with open(os.path.join(out, "gpu_modes.txt"), "w") as fh:
                fh.write("\n".join(lines) + "\n")
        return
    mname, ir, fr, steps, oi = d["bench"]
    fr = fr.astype(np.int32)
    gpu = torch.cuda.get_device_name(0) if device == "cuda" else "cpu"
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    eng = ExactEngine(ir, device=device)
    for m in MODES:
        eng.run(fr[:50], steps, layers_to_record=[oi], **m)                 # warm-up
        sync()
        t0 = time.perf_counter()
        eng.run(fr, steps, layers_to_record=[oi], **m)
        sync()
        lines.append(f"{mname} {len(fr)} images T={steps} {m} on {gpu}: "
                     f"{time.perf_counter() - t0:.3f} s wall")
        print(lines[-1], flush=True)
    if out:
        with open(os.path.join(out, "gpu_modes.txt"), "w") as fh:
            fh.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    if len(sys.argv) not in (3, 4) or sys.argv[1] not in ("prep", "prep-kinds", "check"):
        sys.exit(__doc__)
    if sys.argv[1] == "check":
        check(sys.argv[2], *sys.argv[3:])
    else:
        prep(sys.argv[2], kinds=sys.argv[1] == "prep-kinds")
