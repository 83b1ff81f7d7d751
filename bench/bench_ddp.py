"""DDP scaling of ``qblif train``: samples/s of the training epochs with 1 and N processes
(torchrun on this host, gloo on CPU / nccl on CUDA), the same run and global batch.

    python bench/bench_ddp.py [--nprocs 1,2] [--dataset digits] [--arch mlp] [--limit 1024]
        [--epochs 2] [--batch-size 64] [--device cpu] [--out bench/results/ddp.md]

samples/s = training samples per epoch / mean seconds per training epoch (validation, test
and start-up excluded), from each run's model card. Each process uses one torch thread.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from qblif.core.fileio import atomic_write_text  # noqa: E402


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--nprocs", default="1,2")
    p.add_argument("--dataset", default="digits")
    p.add_argument("--arch", default="mlp")
    p.add_argument("--neuron", default="qblif")
    p.add_argument("--timesteps", type=int, default=4)
    p.add_argument("--limit", type=int, default=1024)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", default=os.path.join(ROOT, "bench", "results", "ddp.md"))
    args = p.parse_args(argv)
    rows = []
    env = dict(os.environ, OMP_NUM_THREADS="1",
               PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    with tempfile.TemporaryDirectory() as d:
        for n in [int(x) for x in args.nprocs.split(",")]:
            out = os.path.join(d, f"n{n}.net")
            cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone",
                   f"--nproc-per-node={n}", "-m", "qblif.cli.train_worker",
                   "--dataset", args.dataset, "--arch", args.arch, "--neuron", args.neuron,
                   "--timesteps", str(args.timesteps), "--limit", str(args.limit),
                   "--val-limit", "64", "--test-limit", "64", "--epochs", str(args.epochs),
                   "--batch-size", str(args.batch_size), "--device", args.device,
                   "--no-progress", "--out", out]
            r = subprocess.run(cmd, env=env, capture_output=True, text=True)
            if r.returncode != 0:
                sys.exit(f"{n} processes failed:\n{r.stderr[-2000:]}")
            card = json.load(open(out[:-4] + ".json"))
            sps = card["train_samples"] / card["seconds_per_epoch"]
            rows.append((n, card["seconds_per_epoch"], sps, card["device"]))
            print(f"{n} process(es): {card['seconds_per_epoch']:.2f} s/epoch, {sps:.0f} samples/s",
                  flush=True)
    base = rows[0][2]
    lines = [f"DDP scaling: {args.neuron} {args.arch} on {args.dataset}, T={args.timesteps}, "
             f"{args.limit} training samples, global batch {args.batch_size}, {args.epochs} epochs, "
             f"{rows[0][3]}, 1 torch thread per process; machine: {platform.processor() or platform.machine()}, "
             f"{os.cpu_count()} CPUs.", "",
             "| processes | s / epoch | samples / s | speed-up |", "|---|---|---|---|"]
    lines += [f"| {n} | {s:.2f} | {sps:.0f} | {sps / base:.2f}x |" for n, s, sps, _ in rows]
    atomic_write_text(args.out, "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
