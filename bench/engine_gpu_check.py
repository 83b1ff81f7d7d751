"""The exact engine on a CUDA GPU: equal to the CPU engine on the coverage kinds and the
shipped models, and the Fashion-MNIST test set timed. Two halves, because the lent GPU machine
has torch but no Lava (so nothing there can compile a NetX file or run the oracle's imports):

    python bench/engine_gpu_check.py prep DATA.pkl.gz     # here: compile, CPU engine results
    python3 bench/engine_gpu_check.py check DATA.pkl.gz [cpu]   # on the GPU machine (repo root)

``prep`` compiles every lava-dl block network of tests/test_exact_engine_kinds.py (the
coverage kinds, seeds 0 and 1), its random delay / SDNN-delay / graded-recurrent networks,
and the shipped models (16 test images each), runs the CPU engine (which the tests hold equal
to the oracle and to Lava) and pickles IR, frames and results, plus the 10,000 Fashion-MNIST
test images for ``fmnist_qblif_conv``. ``check`` runs the engine on CUDA for chunks of 1, 3 and
the default number of samples and compares every layer, step, u and v; then times the test
set (three runs after a warm-up) and checks accuracy and predictions against the CPU engine.
Prints the lines that bench/results/engine_gpu_check.md records.
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


def prep(out_path: str) -> None:
    import pathlib
    import tempfile
    sys.path[:0] = [os.path.join(ROOT, "tests")] + sorted(glob.glob(os.path.join(ROOT, "tests", "*", "")))
    import qblif
    import lavadl_nets as nets
    import test_exact_engine_kinds as tk
    from qblif.exact import ExactEngine
    from qblif.core.data import load_dataset
    from qblif.core.encoding import quantize_intensity
    tmp = pathlib.Path(tempfile.mkdtemp())
    cases = []
    for f in tk.FEATURES + ("sdnn", "conv", "pool"):
        for seed in (0, 1):
            info = nets.make_net(f, seed, tmp / f"{f}{seed}.net")
            with qblif.compile(info["path"]) as net:
                fr = tk._frames(net, info["input_kind"], np.random.default_rng(seed), 6)
                cases.append((f"{f}-{seed}", net.ir, fr, 7))
    for name, (build, steps) in tk.RANDOM_NETS.items():
        for seed in (0, 1):
            rng = np.random.default_rng(seed)
            with qblif.compile(build(tmp, rng), input_bits=4) as net:
                cases.append((f"{name}-{seed}", net.ir,
                              rng.integers(0, 16, size=(6,) + net.input_shape), steps))
    bench = None
    for path in sorted(glob.glob(os.path.join(ROOT, "netx_models", "*.net"))):
        with qblif.compile(path) as net:
            n = 10000 if "fmnist_qblif_conv" in path else 16
            x, y = load_dataset(net.ir.graph["dataset"], "test", n)
            fr = quantize_intensity(x, int(net.ir.graph["input_bits"])).reshape(
                (n,) + net.input_shape)
            steps = int(net.ir.graph["timesteps"])
            if n == 10000:
                bench = (os.path.basename(path), net.ir, fr.astype(np.uint8), np.asarray(y),
                         steps, net.output_index)
            cases.append((os.path.basename(path), net.ir, fr[:16], steps))
    out = []
    for name, ir, fr, steps in cases:
        uv = not ir.graph.get("stateful")
        out.append((name, ir, fr, steps, uv,
                    ExactEngine(ir, batch_size=4).run(fr, steps, record_uv=uv)))
    o = ExactEngine(bench[1]).run(bench[2], bench[4], layers_to_record=[bench[5]])[bench[5]]
    pred = o.reshape(len(bench[2]), bench[4], -1).sum(1).argmax(1)
    with gzip.open(out_path, "wb", compresslevel=6) as fh:
        pickle.dump(dict(cases=out, bench=bench, pred_cpu=pred), fh)
    print(f"{len(out)} cases, CPU accuracy {(pred == bench[3]).mean():.4f} -> {out_path}")


def check(in_path: str, device: str = "cuda", reps: int = 3) -> None:
    from engine_modes_gpu_check import compare_cases       # bench/, beside this script
    d = pickle.load(gzip.open(in_path, "rb"))     # the engine imports no Lava
    import torch
    from qblif.exact import ExactEngine
    cases = [(name, ir, fr, steps, dict(record_uv=uv), want)
             for name, ir, fr, steps, uv, want in d["cases"]]
    lines, bad = compare_cases(cases, device, (1, 3, None))
    lines.insert(0, f"torch {torch.__version__}, device {device}")
    lines.append(f"cases: {len(d['cases'])} x 3 chunk sizes, mismatches: {bad}")
    print("\n".join(lines), flush=True)
    mname, ir, fr, y, steps, oi = d["bench"]
    fr = fr.astype(np.int32)
    gpu = torch.cuda.get_device_name(0) if device == "cuda" else "cpu"
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    eng = ExactEngine(ir, device=device)
    eng.run(fr[:500], steps, layers_to_record=[oi])                    # warm-up
    for _ in range(reps):
        sync()
        t0 = time.perf_counter()
        o = eng.run(fr, steps, layers_to_record=[oi])[oi]
        sync()
        wall = time.perf_counter() - t0
        pred = o.reshape(len(fr), steps, -1).sum(1).argmax(1)
        lines.append(f"{mname} {len(fr)} images T={steps} on {gpu}: {wall:.2f} s wall, chunk "
                     f"{eng.default_batch(steps)}, accuracy {(pred == y).mean():.4f}, "
                     f"predictions equal the CPU engine's: {bool((pred == d['pred_cpu']).all())}")
        print(lines[-1], flush=True)
    out = os.environ.get("OUT")
    if out:
        with open(os.path.join(out, "gpu.txt"), "w") as fh:
            fh.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    if len(sys.argv) not in (3, 4) or sys.argv[1] not in ("prep", "check"):
        sys.exit(__doc__)
    prep(sys.argv[2]) if sys.argv[1] == "prep" else check(sys.argv[2], *sys.argv[3:])
