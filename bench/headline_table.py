"""Table and plot of the equal-epoch comparison (bench/run_headline.sh): reads the model cards
``fmnist_{qblif,cuba}_conv_T{T}_s{seed}.json`` of a results directory and writes
``headline.md`` (markdown table: test accuracy on the card's test images, mean and spread over
the seeds where there are several, spikes per neuron per step, SynOps per sample, epochs,
training images, wall time) and ``headline.png`` (accuracy against T and against SynOps).

    python bench/headline_table.py [--dir bench/results/headline] [--docs docs/training_speed.md]

``--docs``: also replace the text between the ``<!-- headline -->`` and ``<!-- /headline -->``
markers of that file with the table.
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import re
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from qblif.core.fileio import atomic_write_text  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
NAME = re.compile(r"fmnist_(qblif|cuba)_conv_T(\d+)_s(\d+)\.json$")
LABEL = {"qblif": "QB-LIF K=4", "cuba": "CUBA"}
START, END = "<!-- headline -->", "<!-- /headline -->"


def load_cards(directory: str) -> dict:
    """{(family, T): [card, ...]} sorted by seed."""
    runs: dict = {}
    for path in sorted(glob.glob(os.path.join(directory, "*.json"))):
        m = NAME.search(os.path.basename(path))
        if m:
            with open(path) as f:
                runs.setdefault((m.group(1), int(m.group(2))), []).append(json.load(f))
    return runs


def _pm(values, fmt):
    if len(values) == 1:
        return fmt.format(values[0])
    return f"{fmt.format(statistics.mean(values))} ± {fmt.format(statistics.stdev(values))}"


def table(runs: dict) -> str:
    rows = ["| family | T | seeds | test accuracy (%) | spikes / neuron / step | SynOps / sample "
            "| epochs | train images | wall time / run |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for (fam, t), cards in sorted(runs.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        acc = [100 * c["test_accuracy"] for c in cards]
        rows.append(
            f"| {LABEL[fam]} | {t} | {','.join(str(c['seed']) for c in cards)} | {_pm(acc, '{:.2f}')} "
            f"| {_pm([c['spikes_per_neuron_step'] for c in cards], '{:.3f}')} "
            f"| {_pm([c['synops_per_sample'] / 1e6 for c in cards], '{:.2f}')} M "
            f"| {cards[0]['epochs']} | {cards[0]['train_samples']:,} "
            f"| {statistics.mean(c['train_seconds'] for c in cards):.0f} s |")
    c0 = next(iter(runs.values()))[0]
    rows += ["", f"Test images: {c0['test_samples']:,}; validation: {c0['val_samples']:,} images "
             f"held out of the training file (the epoch kept is the best on it); device "
             f"{c0['device']}; batch {c0['config']['batch_size']}, lr {c0['config']['lr']} "
             f"{c0['config']['lr_schedule']}."]
    return "\n".join(rows) + "\n"


def plot(runs: dict, path: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    for fam in ("qblif", "cuba"):
        pts = sorted((t, cards) for (f, t), cards in runs.items() if f == fam)
        if not pts:
            continue
        ts = [t for t, _ in pts]
        acc = [statistics.mean(100 * c["test_accuracy"] for c in cs) for _, cs in pts]
        ops = [statistics.mean(c["synops_per_sample"] / 1e6 for c in cs) for _, cs in pts]
        a.plot(ts, acc, "o-", label=LABEL[fam])
        b.plot(ops, acc, "o-", label=LABEL[fam])
        for t, x, y in zip(ts, ops, acc):
            b.annotate(f"T={t}", (x, y), fontsize=8)
    a.set_xscale("log", base=2)
    a.set_xlabel("input window T (steps)")
    b.set_xlabel("SynOps per sample (millions)")
    for ax in (a, b):
        ax.set_ylabel("test accuracy (%)")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle("Fashion-MNIST conv, equal epochs (bench/run_headline.sh)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dir", default=os.path.join(HERE, "results", "headline"))
    p.add_argument("--docs", help="markdown file whose marked table to replace")
    args = p.parse_args(argv)
    runs = load_cards(args.dir)
    if not runs:
        raise SystemExit(f"headline_table: no cards in {args.dir}")
    text = table(runs)
    print(text)
    atomic_write_text(os.path.join(args.dir, "headline.md"), text)
    plot(runs, os.path.join(args.dir, "headline.png"))
    if args.docs:
        with open(args.docs) as f:
            doc = f.read()
        head, sep, rest = doc.partition(START)
        _, sep2, tail = rest.partition(END)
        if not (sep and sep2):
            raise SystemExit(f"headline_table: {args.docs} has no {START} ... {END} markers")
        atomic_write_text(args.docs, head + START + "\n" + text + END + tail)


if __name__ == "__main__":
    main()
