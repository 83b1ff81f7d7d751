"""Training benchmark (not a test): QB-LIF (K=4) vs CUBA vs ReLU, same architecture and seed,
at input windows T in {1, 2, 4, 8}.

For each run: test accuracy in quantized mode, mean spikes per neuron per step, SynOps per
sample (total, and the part driven by spikes; ReLU: MACs of one forward pass), training
seconds per epoch. Writes ``bench/results/training.md`` (table), ``training.png``
(accuracy vs T, accuracy vs SynOps) and ``training.json``.

    .venv/bin/python bench/bench_training.py --limit 2000 --epochs 1      # ~10 min, 2 cores

Spiking networks are simulated T + latency steps (see ``qblif_lava.training.train``).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from qblif_lava.training.train import TrainConfig, atomic_write_text, train  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", default="fashion-mnist", choices=("digits", "fashion-mnist"))
    p.add_argument("--arch", default="conv", choices=("mlp", "conv"))
    p.add_argument("--timesteps", default="1,2,4,8", help="comma-separated input windows T")
    p.add_argument("--neurons", default="qblif,cuba,relu", help="comma-separated families")
    p.add_argument("--max-burst", type=int, default=4)
    p.add_argument("--limit", type=int, default=2000, help="training samples")
    p.add_argument("--val-limit", type=int, default=500)
    p.add_argument("--test-limit", type=int, default=2000)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--jobs", type=int, default=1,
                   help="neuron families trained in parallel processes (each --threads threads)")
    p.add_argument("--rows-json", help=argparse.SUPPRESS)   # child mode of --jobs
    p.add_argument("--out-dir", default=os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                     "results"))
    args = p.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    return args


def run_family(args, neuron):
    """Train ``neuron`` at every T of ``args`` (ReLU once: it does not depend on T)."""
    rows = []
    ts = [int(t) for t in args.timesteps.split(",")]
    t_start = time.perf_counter()
    for t in (ts if neuron != "relu" else [ts[0]]):
        cfg = TrainConfig(
            dataset=args.dataset, neuron=neuron, arch=args.arch, timesteps=t,
            max_burst=args.max_burst, epochs=args.epochs, seed=args.seed, lr=args.lr,
            batch_size=args.batch_size, limit=args.limit, val_limit=args.val_limit,
            test_limit=args.test_limit, threshold=2.0 if args.arch == "mlp" else 1.0,
            loss_scale=1.0 / args.max_burst if neuron == "qblif" else 1.0,
            threads=args.threads, progress=False)
        _, r = train(cfg, log=None)
        row = {k: r[k] for k in ("neuron", "timesteps", "simulated_steps", "max_burst",
                                 "test_accuracy", "spikes_per_neuron_step",
                                 "synops_per_sample", "spike_synops_per_sample",
                                 "input_synops_per_sample", "seconds_per_epoch",
                                 "train_seconds")}
        rows.append(row)
        print(f"{neuron:5s} T={t}: acc {r['test_accuracy'] * 100:.2f}%  "
              f"spk/n/step {_f(r['spikes_per_neuron_step'], '.4f')}  "
              f"SynOps {_f(r['synops_per_sample'], ',.0f')}  {r['seconds_per_epoch']:.1f} s/epoch "
              f"[{time.perf_counter() - t_start:.0f} s]", flush=True)
    return rows


def run(args):
    """All families, sequentially or as ``--jobs`` child processes of this script (each a
    fresh interpreter: Lava/torch state is not forked); rows in family order."""
    neurons = args.neurons.split(",")
    if args.jobs <= 1 or len(neurons) == 1:
        return [r for n in neurons for r in run_family(args, n)]
    import subprocess
    import tempfile
    from concurrent.futures import ThreadPoolExecutor
    passthrough, skip = [], False
    for a in args.argv:                       # drop --jobs N / --jobs=N / --neurons X
        if skip:
            skip = False
        elif a in ("--jobs", "--neurons"):
            skip = True
        elif not a.startswith(("--jobs=", "--neurons=")):
            passthrough.append(a)

    def child(neuron):
        with tempfile.TemporaryDirectory() as d:
            out = os.path.join(d, "rows.json")
            subprocess.run([sys.executable, os.path.abspath(__file__), *passthrough,
                            "--neurons", neuron, "--jobs", "1", "--rows-json", out], check=True)
            with open(out) as f:
                return json.load(f)
    with ThreadPoolExecutor(max_workers=args.jobs) as ex:
        return [r for rows in ex.map(child, neurons) for r in rows]


def _f(v, spec):
    return "n/a" if v is None else format(v, spec)


def markdown(rows, args, versions) -> str:
    lines = [
        "# Training benchmark: QB-LIF vs CUBA vs ReLU",
        "",
        f"{args.dataset}, arch `{args.arch}`, seed {args.seed}, {args.limit} training samples, "
        f"{args.epochs} epoch(s), batch {args.batch_size}, Adam lr {args.lr}, "
        f"{args.threads} CPU thread(s) per run, {args.jobs} run(s) at a time; test accuracy on the first {args.test_limit} test "
        f"images in quantized mode (QB-LIF exact integer forward; lava-dl CUBA 8-bit). "
        f"Spiking nets run T + latency steps; SynOps = unit events x fan-out over non-zero "
        f"synapses (total includes the graded input; 'spike SynOps' excludes it). "
        f"ReLU: MACs of one forward pass, independent of T.",
        "",
        "| neuron | K | T | steps run | test acc. | spikes/neuron/step | SynOps/sample | "
        "spike SynOps/sample | s/epoch |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        relu = r["neuron"] == "relu"
        lines.append(
            f"| {r['neuron']} | {'-' if relu else r['max_burst']} | {'-' if relu else r['timesteps']} | "
            f"{'-' if relu else r['simulated_steps']} | {r['test_accuracy'] * 100:.2f}% | "
            f"{_f(r['spikes_per_neuron_step'], '.4f')} | "
            f"{_f(r['synops_per_sample'], ',.0f')}{' (MACs)' if relu else ''} | "
            f"{_f(r['spike_synops_per_sample'], ',.0f')} | {r['seconds_per_epoch']:.1f} |")
    lines += ["", "Versions: " + ", ".join(f"{k} {v}" for k, v in versions.items()), ""]
    return "\n".join(lines)


def plot(rows, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4.2))
    for neuron, style in (("qblif", "o-"), ("cuba", "s-")):
        rs = [r for r in rows if r["neuron"] == neuron]
        if not rs:
            continue
        label = f"QB-LIF K={rs[0]['max_burst']}" if neuron == "qblif" else "CUBA"
        a1.plot([r["timesteps"] for r in rs], [100 * r["test_accuracy"] for r in rs], style, label=label)
        a2.plot([r["spike_synops_per_sample"] for r in rs], [100 * r["test_accuracy"] for r in rs],
                style, label=label)
        for r in rs:
            a2.annotate(f"T={r['timesteps']}", (r["spike_synops_per_sample"], 100 * r["test_accuracy"]),
                        fontsize=7, xytext=(3, 3), textcoords="offset points")
    for r in (r for r in rows if r["neuron"] == "relu"):
        a1.axhline(100 * r["test_accuracy"], color="gray", ls="--", label="ReLU (no T)")
        a2.plot([r["synops_per_sample"]], [100 * r["test_accuracy"]], "k^", label="ReLU (MACs)")
    a1.set_xscale("log", base=2)
    a1.set_xlabel("input window T (steps)")
    a1.set_ylabel("test accuracy (%), quantized")
    a1.set_title("accuracy vs T")
    a2.set_xscale("log")
    a2.set_xlabel("SynOps per sample (spike-driven; ReLU: MACs)")
    a2.set_title("accuracy vs SynOps")
    for a in (a1, a2):
        a.grid(alpha=0.3)
        a.legend(fontsize=8)
    fig.tight_layout()
    d = os.path.dirname(os.path.abspath(path))
    tmp = os.path.join(d, ".tmp-" + os.path.basename(path))
    fig.savefig(tmp, dpi=120, format="png")
    plt.close(fig)
    os.replace(tmp, path)


def main(argv=None):
    args = parse_args(argv)
    os.makedirs(args.out_dir, exist_ok=True)
    rows = run(args)
    if args.rows_json:
        atomic_write_text(args.rows_json, json.dumps(rows))
        return
    from qblif_lava.training.train import versions
    v = versions()
    atomic_write_text(os.path.join(args.out_dir, "training.md"), markdown(rows, args, v))
    atomic_write_text(os.path.join(args.out_dir, "training.json"),
                      json.dumps({"args": {k: v for k, v in vars(args).items() if k != "argv"}, "rows": rows, "versions": v}, indent=2) + "\n")
    plot(rows, os.path.join(args.out_dir, "training.png"))
    print(f"wrote {args.out_dir}/training.md, training.json, training.png")


if __name__ == "__main__":
    main()
