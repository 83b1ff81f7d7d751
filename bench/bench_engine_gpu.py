"""The exact engine on a lent CUDA GPU: the Fashion-MNIST test set through ``fmnist_qblif_conv``.

The GPU machine's Python cannot host lava-nc, so the run is split in two:

* ``prepare DIR`` (here, with the project's venv): the quantized test frames and labels, the
  model card's accuracy, and the CPU engine's counts as the reference (every layer and step
  of the first ``--check-samples`` images, the output layer of all of them; the CPU engine
  equals ``qblif.exact.oracle`` and Lava in tests/test_exact_engine.py). It also copies
  ``lava/utils/weightutils.py`` (the one lava-nc module the compiler's passes import, numpy
  only) into ``DIR/shim`` so that the compile runs there.
* ``measure DIR --out FILE`` (on the GPU machine, ``python3`` with torch, numpy, h5py,
  networkx, scipy): compiles the same ``.net`` there, runs :class:`qblif.exact.ExactEngine`
  on CUDA over the whole test set (one warm-up, then timed runs at several ``batch_size``\\s,
  ``torch.cuda.synchronize`` before each clock read), checks every count against the
  reference and the accuracy against the card, and times the same engine on that machine's
  CPU threads as the in-run baseline. Writes a Markdown table to FILE.

    python bench/bench_engine_gpu.py prepare .gpu_bench
    python3 bench/bench_engine_gpu.py measure .gpu_bench --out $OUT/engine_gpu.md
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
MODEL = os.path.join(ROOT, "netx_models", "fmnist_qblif_conv.net")


def prepare(d: str, model: str, check: int) -> None:
    import lava.utils.weightutils as wu

    import qblif
    from qblif.exact import ExactEngine
    from qblif.core.data import load_dataset
    from qblif.core.encoding import quantize_intensity

    os.makedirs(os.path.join(d, "shim", "lava", "utils"), exist_ok=True)
    for pkg in ("lava", os.path.join("lava", "utils")):
        open(os.path.join(d, "shim", pkg, "__init__.py"), "w").close()
    shutil.copy(wu.__file__, os.path.join(d, "shim", "lava", "utils", "weightutils.py"))
    with open(os.path.splitext(model)[0] + ".json") as f:
        card = json.load(f)
    net = qblif.compile(model)
    ir = net.ir
    steps = int(ir.graph["timesteps"])
    x, y = load_dataset(card["dataset"], "test")
    frames = quantize_intensity(x, int(ir.graph["input_bits"])).reshape(
        (len(x),) + net.input_shape)
    eng = ExactEngine(ir)
    out = eng.run(frames, steps, layers_to_record=[net.output_index])[net.output_index]
    first = eng.run(frames[:check], steps)
    assert frames.min() >= 0 and frames.max() < 256, "frames must fit uint8 to travel"
    np.save(os.path.join(d, "frames.npy"), frames.astype(np.uint8))  # the 64 MiB tree limit
    np.save(os.path.join(d, "labels.npy"), np.asarray(y))
    np.save(os.path.join(d, "out.npy"), out)
    np.savez_compressed(os.path.join(d, "first.npz"), **{str(k): v for k, v in first.items()})
    with open(os.path.join(d, "meta.json"), "w") as f:
        json.dump({"model": os.path.relpath(model, ROOT), "steps": steps,
                   "output_index": net.output_index, "card_accuracy": card["test_accuracy"],
                   "check_samples": check}, f)
    print(f"prepared {d}: {len(frames)} frames, reference counts for {check} images")


def measure(d: str, out_path: str, batches: list, cpu_threads: list) -> int:
    sys.path.insert(1, os.path.join(d, "shim"))
    import torch

    import qblif
    from qblif.exact import ExactEngine

    with open(os.path.join(d, "meta.json")) as f:
        meta = json.load(f)
    frames = np.load(os.path.join(d, "frames.npy")).astype(np.int64)
    y = np.load(os.path.join(d, "labels.npy"))
    ref_out, first = np.load(os.path.join(d, "out.npy")), np.load(os.path.join(d, "first.npz"))
    ir = qblif.compile_ir(os.path.join(ROOT, meta["model"]))        # no Lava needed
    steps, oi, n = meta["steps"], meta["output_index"], len(frames)
    rows, notes = [], []

    def timed(eng, sync):
        if sync:
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        got = eng.run(frames, steps, layers_to_record=[oi])[oi]
        if sync:
            torch.cuda.synchronize()
        return got, time.perf_counter() - t0

    def row(label, eng, sync):
        eng.run(frames[:256], steps, layers_to_record=[oi])          # warm-up
        got, wall = min((timed(eng, sync) for _ in range(3)), key=lambda r: r[1])
        acc = float((got.reshape(n, steps, -1).sum(1).argmax(1) == y).mean())
        same = np.array_equal(got, ref_out)
        rows.append((label, wall, acc, same))

    dev = torch.cuda.get_device_name() if torch.cuda.is_available() else None
    if dev:
        for b in batches:
            row(f"exact engine, CUDA ({dev}), batch_size {b or 'default'}",
                ExactEngine(ir, device="cuda", batch_size=b or None), True)
        eng = ExactEngine(ir, device="cuda")
        got = eng.run(frames[:meta["check_samples"]], steps)
        same = all(np.array_equal(got[int(k)], first[k]) for k in first.files)
        notes.append(f"CUDA engine == CPU reference on every layer and step of the first "
                     f"{meta['check_samples']} images: {'yes' if same else 'NO'}")
    else:
        notes.append("no CUDA device: CPU rows only")
    for th in cpu_threads:
        row(f"exact engine, this machine's CPU, {th} threads", ExactEngine(ir, threads=th),
            False)
    card = float(meta["card_accuracy"])
    lines = [
        "# Exact engine on a GPU",
        "",
        f"Machine: {platform.platform()}, {os.cpu_count()} logical cores, Python "
        f"{platform.python_version()}, torch {torch.__version__}, numpy {np.__version__}; "
        f"GPU: {dev or 'none'}. Model {meta['model']}, {n} test images, T = {steps}; card "
        f"accuracy {card * 100:.2f}%. Best of 3 timed runs after a warm-up; CUDA times include "
        "host-to-device frames and device-to-host counts.",
        "",
        "| run | wall s | images/s | accuracy | counts == CPU reference |",
        "|---|---:|---:|---:|---|",
    ]
    for label, wall, acc, same in rows:
        lines.append(f"| {label} | {wall:.3f} | {n / wall:,.0f} | {acc * 100:.2f}% | "
                     f"{'yes' if same else 'NO'} |")
    lines += [""] + [f"- {s}" for s in notes]
    text = "\n".join(lines) + "\n"
    with open(out_path, "w") as f:
        f.write(text)
    print(text)
    ok = all(r[3] for r in rows) and all(s.endswith("yes") for s in notes if "==" in s)
    return 0 if ok else 1


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("prepare")
    p.add_argument("dir")
    p.add_argument("--model", default=MODEL)
    p.add_argument("--check-samples", type=int, default=500)
    m = sub.add_parser("measure")
    m.add_argument("dir")
    m.add_argument("--out", required=True)
    m.add_argument("--batches", type=int, nargs="+", default=[0, 2500, 10000],
                   help="CUDA batch sizes (0: the engine's default)")
    m.add_argument("--cpu-threads", type=int, nargs="+", default=[16])
    a = ap.parse_args(argv)
    if a.cmd == "prepare":
        prepare(a.dir, a.model, a.check_samples)
        return 0
    return measure(a.dir, a.out, a.batches, a.cpu_threads)


if __name__ == "__main__":
    sys.exit(main())
