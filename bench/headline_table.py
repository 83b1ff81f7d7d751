"""Table and plot of the equal-epoch comparison (bench/run_headline.sh): reads the model cards
``fmnist_{qblif,cuba}_conv_T{T}_s{seed}.json`` of a results directory and writes
``headline.md`` (markdown table: test accuracy on the card's test images, mean and spread over
the seeds where there are several, spikes per neuron per step, SynOps per sample, the epoch
kept (best validation accuracy) and the validation accuracy of the last three epochs (does it
plateau?), epochs, training images, wall time) and ``headline.png`` (accuracy against T,
against SynOps, and the validation curves). Runs still missing from the grid are left out of
the table and the plot (listed under the table).

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
COLOR = {1: "tab:blue", 2: "tab:orange", 4: "tab:green", 8: "tab:red"}
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


def _best_epoch(card) -> int:
    """The 1-based epoch whose validation accuracy was kept (the first best)."""
    val = [h["val_accuracy"] for h in card["history"]]
    return 1 + val.index(max(val)) if val else 0


def _tail(card, n=3) -> str:
    """Validation accuracy (%) of the last ``n`` epochs, e.g. ``86.1 86.5 86.4``."""
    return " ".join(f"{100 * h['val_accuracy']:.1f}" for h in card["history"][-n:])


def table(runs: dict, expected=None) -> str:
    rows = ["| family | T | seeds | test accuracy (%) | spikes / neuron / step | SynOps / sample "
            "| epoch kept | val. acc., last 3 epochs (%) | epochs | train images | wall time / run |",
            "|---|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|"]
    for (fam, t), cards in sorted(runs.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        acc = [100 * c["test_accuracy"] for c in cards]
        rows.append(
            f"| {LABEL[fam]} | {t} | {','.join(str(c['seed']) for c in cards)} | {_pm(acc, '{:.2f}')} "
            f"| {_pm([c['spikes_per_neuron_step'] for c in cards], '{:.3f}')} "
            f"| {_pm([c['synops_per_sample'] / 1e6 for c in cards], '{:.2f}')} M "
            f"| {','.join(str(_best_epoch(c)) for c in cards)} "
            f"| {' / '.join(_tail(c) for c in cards)} "
            f"| {cards[0]['epochs']} | {cards[0]['train_samples']:,} "
            f"| {statistics.mean(c['train_seconds'] for c in cards):.0f} s |")
    c0 = next(iter(runs.values()))[0]
    rows += ["", f"Test images: {c0['test_samples']:,}; validation: {c0['val_samples']:,} images "
             f"held out of the training file (the epoch kept is the best on it); device "
             f"{c0['device']}; batch {c0['config']['batch_size']}, lr {c0['config']['lr']} "
             f"{c0['config']['lr_schedule']}."]
    missing = sorted(set(expected or ()) - {(f, t, c["seed"]) for (f, t), cs in runs.items()
                                            for c in cs}, key=lambda r: (r[1], r[0], r[2]))
    if missing:
        rows += ["", "Not finished (left out): " + ", ".join(
            f"{LABEL[f]} T = {t} seed {s}" for f, t, s in missing) + "."]
    return "\n".join(rows) + "\n"


#: the grid of bench/run_headline.sh (family, T, seed)
GRID = [(f, t, s) for f in ("qblif", "cuba") for t, s in ((1, 0), (2, 0), (4, 0), (4, 1),
                                                           (4, 2), (8, 0))]


def plot(runs: dict, path: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, (a, b, v) = plt.subplots(1, 3, figsize=(15, 4))
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
        style = "-" if fam == "qblif" else "--"
        for t, cs in pts:
            h = cs[0]["history"]
            v.plot([e["epoch"] for e in h], [100 * e["val_accuracy"] for e in h], style,
                   marker="." if fam == "qblif" else "x", color=COLOR.get(t),
                   label=f"{LABEL[fam]} T={t}")
    a.set_xscale("log", base=2)
    a.set_xlabel("input window T (steps)")
    b.set_xlabel("SynOps per sample (millions)")
    for ax in (a, b):
        ax.set_ylabel("test accuracy (%)")
        ax.grid(alpha=0.3)
        ax.legend()
    v.set_xlabel("epoch (solid: QB-LIF, dashed: CUBA)")
    v.xaxis.get_major_locator().set_params(integer=True)
    v.set_ylabel("validation accuracy (%), seed 0")
    v.grid(alpha=0.3)
    v.legend(fontsize=6, ncol=2)
    c0 = next(iter(runs.values()))[0]
    fig.suptitle(f"Fashion-MNIST conv, equal epochs (bench/run_headline.sh): "
                 f"{c0['train_samples']:,} training images x {c0['epochs']} epochs, test on "
                 f"{c0['test_samples']:,}")
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
    text = table(runs, GRID)
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
