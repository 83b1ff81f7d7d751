"""Training-step benchmark (not a test): QB-LIF (K=4, float training mode) vs lava-dl CUBA.

Same network (Fashion-MNIST conv, ``qblif.training.models.arch_spec``), same batch, same input window
T (simulated T + latency steps, as ``qblif.training.train`` does), CPU, torch threads 1.
Times one training step = forward + cross-entropy + backward + Adam step + threshold clamp
(what ``train`` does per batch), median of ``--repeat`` after ``--warmup`` steps. Also times
the QB-LIF quantized-mode forward (evaluation, no grad) for information.

Input: random 4-bit integer intensities (``train.encode`` of uniform images), random labels.
Prints ms/step for each and the ratio QB-LIF / CUBA; writes ``bench/results/train_step.md``
(atomic). The project target: ratio <= 1.5.

    .venv/bin/python bench/bench_train_step.py                 # ~1 min on one core
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from qblif.training.train import TrainConfig, clamp_thresholds, atomic_write_text, encode, logits_of, make_model, seed_everything, set_quantized, sim_steps

RESULT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "train_step.md")
TARGET = 1.5


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--timesteps", type=int, default=4)
    p.add_argument("--max-burst", type=int, default=4)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--repeat", type=int, default=15)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=RESULT)
    p.add_argument("--no-write", action="store_true", help="print only")
    p.add_argument("--note-file", help="markdown appended to the result (e.g. earlier figures)")
    return p.parse_args(argv)


def _median_ms(fn, warmup, repeat):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times), min(times)


def bench_family(neuron, args, x_img, y):
    cfg = TrainConfig(dataset="fashion-mnist", neuron=neuron, arch="conv",
                      timesteps=args.timesteps, max_burst=args.max_burst, seed=args.seed,
                      batch_size=args.batch_size, threads=args.threads, progress=False)
    seed_everything(cfg.seed, cfg.threads)
    model = make_model(cfg)
    steps = sim_steps(model, cfg.timesteps)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    xb = encode(model, x_img, cfg.input_bits)

    def train_step():
        loss = F.cross_entropy(logits_of(model, xb, steps, cfg.loss_scale), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        clamp_thresholds(model)

    model.train()
    set_quantized(model, cfg.train_quantized)
    res = {"steps": steps}
    res["train_ms"], res["train_min_ms"] = _median_ms(train_step, args.warmup, args.repeat)
    if neuron == "qblif":
        model.eval()
        set_quantized(model, True)

        def eval_fwd():
            with torch.no_grad():
                logits_of(model, xb, steps)
        res["eval_q_ms"], res["eval_q_min_ms"] = _median_ms(eval_fwd, args.warmup, args.repeat)
    return res


def _commit():
    try:
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        out = subprocess.run(["git", "-C", root, "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", root, "status", "--porcelain", "--", "qblif"],
                               capture_output=True, text=True, check=True).stdout.strip()
        return out + (" + uncommitted changes in qblif/" if dirty else "")
    except Exception:                                             # noqa: BLE001
        return "unknown"


def main(argv=None):
    args = parse_args(argv)
    rng = np.random.default_rng(args.seed)
    x_img = rng.random((args.batch_size, 1, 28, 28)).astype(np.float32)
    y = torch.from_numpy(rng.integers(0, 10, args.batch_size).astype(np.int64))
    q = bench_family("qblif", args, x_img, y)
    c = bench_family("cuba", args, x_img, y)
    ratio = q["train_ms"] / c["train_ms"]
    print(f"simulated steps {q['steps']} (T={args.timesteps} + latency), batch {args.batch_size}, "
          f"threads {args.threads}")
    print(f"QB-LIF K={args.max_burst} train step (float mode): {q['train_ms']:.1f} ms "
          f"(min {q['train_min_ms']:.1f})")
    print(f"CUBA train step:                       {c['train_ms']:.1f} ms "
          f"(min {c['train_min_ms']:.1f})")
    print(f"ratio QB-LIF / CUBA: {ratio:.2f} (target <= {TARGET})")
    print(f"QB-LIF quantized-mode forward (eval, no grad): {q['eval_q_ms']:.1f} ms")
    if args.no_write:
        return 0
    return q, c, ratio, args


def _arch() -> str:
    from qblif.training.models import describe
    return describe("fashion-mnist", "conv")


def markdown(q, c, ratio, args, before: str = "") -> str:
    lines = [
        "# Training step: QB-LIF vs CUBA",
        "",
        "`bench/bench_train_step.py` (not a test). Fashion-MNIST conv network "
        f"{_arch()}, batch " f"{args.batch_size}, T = {args.timesteps} "
        f"(simulated {q['steps']} steps = T + latency), random 4-bit integer inputs, CPU, "
        f"torch threads {args.threads}. One step = forward + cross-entropy + backward + Adam + "
        f"threshold clamp; median of {args.repeat} after {args.warmup} warm-up steps "
        "(min in brackets). Both families measured in the same run.",
        "",
        f"Code: commit {_commit()}; torch {torch.__version__}; {platform.processor() or platform.machine()}.",
        "",
        "| measurement | ms |",
        "|---|---|",
        f"| QB-LIF K={args.max_burst} train step (float mode, `train_quantized=False`) | "
        f"{q['train_ms']:.1f} ({q['train_min_ms']:.1f}) |",
        f"| CUBA train step | {c['train_ms']:.1f} ({c['train_min_ms']:.1f}) |",
        f"| **ratio QB-LIF / CUBA** | **{ratio:.2f}** (target <= {TARGET}) |",
        f"| QB-LIF quantized-mode forward, eval, no grad (information) | "
        f"{q['eval_q_ms']:.1f} ({q['eval_q_min_ms']:.1f}) |",
        "",
    ]
    if before:
        lines += [before, ""]
    return "\n".join(lines)


if __name__ == "__main__":
    out = main()
    if isinstance(out, tuple):
        q, c, ratio, args = out
        before = ""
        if args.note_file:
            with open(args.note_file) as f:
                before = f.read().strip()
        atomic_write_text(args.out, markdown(q, c, ratio, args, before))
        print(f"wrote {args.out}")
