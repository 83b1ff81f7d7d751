"""Training benchmark (not a test): QB-LIF (K=4) vs CUBA vs ReLU, same architecture and seed,
at input windows T in {1, 2, 4, 8}.

For each run: test accuracy in quantized mode, mean spikes per neuron per step, SynOps per
sample (total, and the part driven by spikes; ReLU: MACs of one forward pass), training
seconds per epoch. Writes ``bench/results/training.md`` (table), ``training.png``
(accuracy vs T, accuracy vs SynOps) and ``training.json``.

    .venv/bin/python bench/bench_training.py --limit 2000 --epochs 1      # ~10 min, 2 cores

Spiking networks are simulated T + latency steps (see ``qblif.training.train``).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from qblif.training.train import TrainConfig, atomic_write_text, train  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", default="fashion-mnist", choices=("digits", "fashion-mnist"))
    p.add_argument("--arch", default="conv", choices=("mlp", "conv"))
    p.add_argument("--timesteps", default="1,2,4,8", help="comma-separated input windows T")
    p.add_argument("--neurons", default="qblif,cuba,relu", help="comma-separated families")
    p.add_argument("--max-burst", type=int, default=4)
    p.add_argument("--cuba-impl", default="lava-dl", choices=("lava-dl", "qblif"),
                   help="CUBA runs: lava-dl's blocks (CUDA kernels on a GPU) or ours (QB-LIF "
                        "K=1, reset zero: the same forward in plain torch)")
    p.add_argument("--limit", type=int, default=2000, help="training samples (0: all)")
    p.add_argument("--val-limit", type=int, default=500)
    p.add_argument("--test-limit", type=int, default=2000)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--lr-schedule", default="cosine", choices=("cosine", "constant"))
    p.add_argument("--time-budget", type=float, default=None,
                   help="seconds of training + validation per run (plans its epochs; see "
                        "qblif train --time-budget)")
    p.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--jobs", type=int, default=1,
                   help="runs (one per family and T) trained in parallel processes, each with "
                        "--threads threads")
    p.add_argument("--save-models", metavar="DIR",
                   help="also export every spiking run as DIR/<dataset>_<neuron>_<arch>_T<T>.net "
                        "with its model card")
    p.add_argument("--rows-json", help=argparse.SUPPRESS)   # child mode of --jobs
    p.add_argument("--from-runs", action="store_true",
                   help="train nothing: rebuild the table and plot from OUT_DIR/runs/*.json "
                        "(the rows that --jobs children left, e.g. of a run cut short)")
    p.add_argument("--out-dir", default=os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                     "results"))
    args = p.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    return args


ROW_KEYS = ("neuron", "timesteps", "simulated_steps", "max_burst", "test_accuracy",
            "spikes_per_neuron_step", "synops_per_sample", "spike_synops_per_sample",
            "input_synops_per_sample", "seconds_per_epoch", "train_seconds", "epochs", "device",
            "versions")


def runs_of(args):
    """(neuron, T) pairs in table order (ReLU once: it does not depend on T)."""
    ts = [int(t) for t in args.timesteps.split(",")]
    return [(n, t) for n in args.neurons.split(",") for t in (ts if n != "relu" else ts[:1])]


def run_one(args, neuron, t):
    """Train ``neuron`` at input window ``t``; the table row (and, with --save-models, the
    exported model and its card)."""
    t_start = time.perf_counter()
    cfg = TrainConfig(
        dataset=args.dataset, neuron=neuron, arch=args.arch, timesteps=t,
        max_burst=args.max_burst, epochs=args.epochs, seed=args.seed, lr=args.lr,
        batch_size=args.batch_size, limit=args.limit or None, val_limit=args.val_limit,
        test_limit=args.test_limit, threshold=2.0 if args.arch == "mlp" else 1.0,
        loss_scale=1.0 / args.max_burst if neuron == "qblif" else 1.0,
        lr_schedule=args.lr_schedule, time_budget=args.time_budget, device=args.device,
        threads=args.threads, progress=False,
        cuba_impl=args.cuba_impl if neuron == "cuba" else "lava-dl")
    model, r = train(cfg, log=lambda m: print(f"{neuron} T={t}: {m}", flush=True))
    if args.save_models and neuron != "relu":
        from qblif.training.train import export, write_card
        os.makedirs(args.save_models, exist_ok=True)
        out = os.path.join(args.save_models, f"{args.dataset.replace('fashion-mnist', 'fmnist')}"
                                             f"_{neuron}_{args.arch}_T{t}.net")
        export(model, cfg, out)
        write_card(r, out, note="Trained by bench/bench_training.py, side by side with the "
                                "other families and input windows of the same run.")
    print(f"{neuron:5s} T={t}: acc {r['test_accuracy'] * 100:.2f}%  "
          f"spk/n/step {_f(r['spikes_per_neuron_step'], '.4f')}  "
          f"SynOps {_f(r['synops_per_sample'], ',.0f')}  {r['epochs']} epochs, "
          f"{r['seconds_per_epoch']:.1f} s/epoch [{time.perf_counter() - t_start:.0f} s]",
          flush=True)
    return {k: r[k] for k in ROW_KEYS}


def run_path(args, neuron, t):
    """Where a ``--jobs`` child leaves its row (kept: a run cut short still has its rows;
    ``--from-runs`` rebuilds the table from them)."""
    d = os.path.join(args.out_dir, "runs")
    os.makedirs(d, exist_ok=True)
    return os.path.join(d, f"{neuron}_T{t}.json")


def rows_from_runs(args):
    rows = []
    for n, t in runs_of(args):
        p = run_path(args, n, t)
        if os.path.exists(p):
            with open(p) as f:
                rows += json.load(f)
        else:
            print(f"{n} T={t}: no result in {p}", flush=True)
    return rows


def run(args):
    """Every (family, T) run, sequentially or as ``--jobs`` child processes of this script
    (each a fresh interpreter); rows in table order. A failed child is reported and left
    out of the table."""
    pairs = runs_of(args)
    if args.jobs <= 1 or len(pairs) == 1:
        rows = [run_one(args, n, t) for n, t in pairs]
        if not args.rows_json:    # a --jobs child's rows go to --rows-json, its run file
            for r in rows:
                atomic_write_text(run_path(args, r["neuron"], r["timesteps"]), json.dumps([r]))
        return rows
    import subprocess
    from concurrent.futures import ThreadPoolExecutor
    passthrough, skip = [], False
    for a in args.argv:                       # drop --jobs / --neurons / --timesteps
        if skip:
            skip = False
        elif a in ("--jobs", "--neurons", "--timesteps"):
            skip = True
        elif not a.startswith(("--jobs=", "--neurons=", "--timesteps=")):
            passthrough.append(a)

    t_bench = time.perf_counter()
    cuba_on_gpu = (args.device.startswith("cuda") and args.cuba_impl == "lava-dl"
                   and any(n == "cuba" for n, _ in pairs))
    kernel = None
    if cuba_on_gpu:     # build lava-dl's CUBA kernel once, beside the other families' runs
        import threading
        kernel = {"done": threading.Event(), "ok": False}

        def build():
            from qblif.training.train import CUBA_KERNELS
            t0 = time.perf_counter()
            procs = [subprocess.Popen([sys.executable, "-c", (
                "import sys; sys.path[:0] = " + repr(sys.path[:2]) + "; "
                "from qblif.training.train import build_cuba_kernel; "
                f"build_cuba_kernel({name!r}, {args.device!r})")]) for name in CUBA_KERNELS]
            kernel["ok"] = all(p.wait() == 0 for p in procs)
            print(f"lava-dl CUBA CUDA kernel: {'built' if kernel['ok'] else 'FAILED'} in "
                  f"{time.perf_counter() - t0:.0f} s"
                  + ("" if kernel["ok"] else "; CUBA runs fall back to --device cpu"), flush=True)
            kernel["done"].set()
        threading.Thread(target=build, daemon=True).start()

    def child(pair):
        neuron, t = pair
        extra = []
        if neuron == "cuba" and kernel is not None:
            kernel["done"].wait()
            if not kernel["ok"]:
                extra = ["--device", "cpu", "--threads", "2"]
            if args.time_budget:       # the build took part of this run's wall-clock budget
                left = args.time_budget - (time.perf_counter() - t_bench)
                extra += ["--time-budget", str(max(left, 0.25 * args.time_budget))]
        out = run_path(args, neuron, t)
        if os.path.exists(out):
            os.remove(out)
        proc = subprocess.run([sys.executable, os.path.abspath(__file__), *passthrough,
                               "--neurons", neuron, "--timesteps", str(t), "--jobs", "1",
                               "--rows-json", out, *extra])
        if proc.returncode != 0:
            print(f"{neuron} T={t}: FAILED (exit {proc.returncode})", flush=True)
            return []
        with open(out) as f:
            return json.load(f)
    with ThreadPoolExecutor(max_workers=args.jobs) as ex:
        return [r for rows in ex.map(child, pairs) for r in rows]


def _f(v, spec):
    return "n/a" if v is None else format(v, spec)


def markdown(rows, args, versions) -> str:
    lines = [
        "# Training benchmark: QB-LIF vs CUBA vs ReLU",
        "",
        f"{args.dataset}, arch `{args.arch}` ({_arch(args)}), seed {args.seed}, "
        f"{args.limit or 'all'} training samples, up to {args.epochs} epoch(s)"
        + (f" within a {args.time_budget:.0f} s budget per run" if args.time_budget else "")
        + f", batch {args.batch_size}, Adam lr {args.lr} ({args.lr_schedule}), device "
        f"{_devices(rows, args)}, {args.threads} CPU thread(s) per run, {args.jobs} run(s) at a "
        f"time; test accuracy on {_test_set(args)} in quantized mode (QB-LIF exact integer "
        f"forward; lava-dl CUBA 8-bit). "
        f"Spiking nets run T + latency steps; SynOps = unit events x fan-out over non-zero "
        f"synapses (total includes the graded input; 'spike SynOps' excludes it). "
        f"ReLU: MACs of one forward pass, independent of T.",
        "",
        "| neuron | K | T | steps run | test acc. | spikes/neuron/step | SynOps/sample | "
        "spike SynOps/sample | epochs | s/epoch |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        relu = r["neuron"] == "relu"
        lines.append(
            f"| {r['neuron']} | {'-' if relu else r['max_burst']} | {'-' if relu else r['timesteps']} | "
            f"{'-' if relu else r['simulated_steps']} | {r['test_accuracy'] * 100:.2f}% | "
            f"{_f(r['spikes_per_neuron_step'], '.4f')} | "
            f"{_f(r['synops_per_sample'], ',.0f')}{' (MACs)' if relu else ''} | "
            f"{_f(r['spike_synops_per_sample'], ',.0f')} | {r.get('epochs', args.epochs)} | "
            f"{r['seconds_per_epoch']:.1f} |")
    lines += ["", "Versions: " + ", ".join(f"{k} {v}" for k, v in versions.items()), ""]
    return "\n".join(lines)


def _arch(args):
    from qblif.training.models import describe
    return describe(args.dataset, args.arch)


def _devices(rows, args):
    return ", ".join(sorted({r.get("device") or args.device for r in rows})) or args.device


def _test_set(args):
    return f"the first {args.test_limit} test images" if args.test_limit else "the whole test split"


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
    rows = rows_from_runs(args) if args.from_runs else run(args)
    if args.rows_json:
        atomic_write_text(args.rows_json, json.dumps(rows))
        return
    from qblif.training.train import versions
    v = next((r["versions"] for r in rows if r.get("versions")), None) or versions()
    atomic_write_text(os.path.join(args.out_dir, "training.md"), markdown(rows, args, v))
    atomic_write_text(os.path.join(args.out_dir, "training.json"),
                      json.dumps({"args": {k: v for k, v in vars(args).items() if k != "argv"}, "rows": rows, "versions": v}, indent=2) + "\n")
    plot(rows, os.path.join(args.out_dir, "training.png"))
    print(f"wrote {args.out_dir}/training.md, training.json, training.png")


if __name__ == "__main__":
    main()
