"""Pictures of compiled networks' runs: ``qblif run --plot`` and ``qblif compare``.

The figures themselves are :mod:`qblif.viz.raster` (plain arrays, any engine); this module adds
what the IR knows (layer labels, each layer's K) and the ``compare`` command: two models, the
same test samples, one Lava run each, a text table and an optional figure (docs/plots.md).
"""
from __future__ import annotations

import os

import numpy as np

from qblif.core.constants import ENCODINGS
from qblif.ir import layers, producer
from qblif.viz import raster as viz

RUN_PLOT_SAMPLES = viz.RASTER_SAMPLES


def layer_meta(ir) -> tuple:
    """``(names, max_burst)`` of every neuron layer of ``ir``: labels like
    ``"0: dense QBLIF 128"`` and K (QB-LIF: ``maxBurst``; CUBA: 1; SDNN: ``None``, graded)."""
    names, kmax = {}, {}
    for ly in layers(ir):
        if ly.neuron is None:
            continue
        n = ly.neuron
        names[ly.index] = f"{ly.index}: {ly.kind} {n.kind} {'x'.join(map(str, ly.shape))}"
        kmax[ly.index] = None if n.kind == "SDNN" else (int(n.max_burst) if n.kind == "QBLIF" else 1)
    return names, kmax


# ----------------------------------------------------------------------------- qblif run --plot

def check_run_plot_args(args, net) -> None:
    """Check ``--plot``, ``--plot-layer``, ``--plot-samples`` before the run (one-line
    :class:`qblif.viz.raster.PlotError`): the file can be written, the layer is a neuron layer."""
    if not args.plot:
        if args.plot_layer is not None or args.plot_samples is not None:
            raise viz.PlotError("--plot-layer and --plot-samples need --plot FILE.png")
        return
    viz.check_plot_path(args.plot)
    if args.plot_samples is not None and args.plot_samples < 1:
        raise viz.PlotError(f"--plot-samples={args.plot_samples} must be >= 1")
    names, _ = layer_meta(net.ir)
    if args.plot_layer is not None and args.plot_layer not in names:
        raise viz.PlotError(f"--plot-layer {args.plot_layer}: unknown layer; the neuron layers "
                            f"of {net.ir.graph.get('path')} are {', '.join(map(str, names))}")


def save_run_plot(net, counts: dict, path: str, layer=None, samples=None) -> object:
    """Write :func:`qblif.viz.raster.plot_run` of ``counts`` (a run of ``net``) to ``path``
    (PNG); returns the figure."""
    names, kmax = layer_meta(net.ir)
    steps = next(iter(counts.values())).shape[1] if counts else 0
    title = (f"{os.path.basename(str(net.ir.graph.get('path')))}: "
             f"{len(next(iter(counts.values())))} sample(s) x {steps} steps, "
             f"{net.ir.graph['encoding']} encoding") if counts else None
    fig = viz.plot_run(counts, layer=layer, samples=samples or RUN_PLOT_SAMPLES,
                       max_burst=kmax, names=names, title=title)
    viz.save_png(fig, path)
    return fig


# ----------------------------------------------------------------------------- qblif compare

def summarize(net, counts: dict, labels: np.ndarray, name: str) -> dict:
    """The numbers ``compare`` shows for one run of ``net``: accuracy, unit spikes per neuron
    per step (all neuron layers, each over its T-step windows), SynOps per sample (unit events
    x fan-out over each layer's T steps, graded input included, as the report measures them;
    ``spike_synops_per_sample`` without the synapses fed by the graded input),
    the burst histogram per layer, and the run's Lava wall time."""
    from qblif.core.frames import accuracy
    names, kmax = layer_meta(net.ir)
    run = net.last_run
    steps = int(run["steps"])
    synops = spike_synops = 0.0
    for i, st in run["layers"].items():
        src = producer(net.ir, i)
        fed_by_input = src is None or (src.kind == "input" and src.neuron is None)
        synops += st.get("synops_per_step", 0.0) * steps
        spike_synops += 0.0 if fed_by_input else st.get("synops_per_step", 0.0) * steps
    kinds = sorted({n.split()[2] + (f" K={kmax[i]}" if kmax[i] and kmax[i] > 1 else "")
                    for i, n in names.items()})
    return dict(name=name, path=str(net.ir.graph.get("path")), neurons=", ".join(kinds),
                n_neurons=sum(int(np.prod(counts[i].shape[2:])) for i in counts),
                steps=steps, samples=int(run["samples"]),
                accuracy=accuracy(net, counts, labels),
                spikes_per_neuron_step=viz.spikes_per_neuron_step(counts, kmax),
                synops_per_sample=float(synops), spike_synops_per_sample=float(spike_synops),
                histogram=viz.burst_histogram(counts, kmax), names=names,
                wall_s=float(run["wall_s"]))


def run_models(paths, dataset: str, samples: int, encoding: str = "graded",
               progress: bool = False) -> list:
    """Compile each model, run the first ``samples`` test images of ``dataset`` through it in
    Lava (each at its file's T and input bits) and return :func:`summarize` of each."""
    from contextlib import ExitStack
    from qblif import compile as compile_net
    from qblif.core.frames import dataset_frames, file_steps
    bases = [os.path.basename(p) for p in paths]
    with ExitStack() as stack:
        jobs = []                   # every file compiled and its input checked before any run
        for j, path in enumerate(paths):
            net = stack.enter_context(compile_net(path, encoding=encoding))
            name = bases[j] if bases.count(bases[j]) == 1 else f"{chr(65 + j)}: {bases[j]}"
            jobs.append((net, name, file_steps(net), *dataset_frames(net, dataset, samples)))
        return [summarize(net, net.run(frames, steps, progress=progress), labels, name)
                for net, name, steps, frames, labels in jobs]


def burst_fractions(summary: dict) -> np.ndarray:
    """Fraction of neuron-steps with burst n = 0..K, over every burst layer of a summary."""
    hists = list(summary["histogram"].values())
    if not hists:
        return np.zeros(0)
    total = np.zeros(max(len(h) for h in hists))
    for h in hists:
        total[:len(h)] += h
    return total / total.sum()


def compare_table(summaries: list, dataset: str, encoding: str) -> str:
    """The text table of ``qblif compare``: one column per model."""
    fr = [burst_fractions(s) for s in summaries]
    kmax = max((len(f) for f in fr), default=1) - 1
    rows = [("neurons", [s["neurons"] for s in summaries]),
            ("neurons (count)", [f"{s['n_neurons']:,}" for s in summaries]),
            ("steps per sample T", [str(s["steps"]) for s in summaries]),
            ("accuracy", [f"{s['accuracy'] * 100:.2f}%" for s in summaries]),
            ("spikes/neuron/step", [f"{s['spikes_per_neuron_step']:.4f}" for s in summaries]),
            ("SynOps/sample", [f"{s['synops_per_sample']:,.0f}" for s in summaries]),
            ("  of which from spikes", [f"{s['spike_synops_per_sample']:,.0f}"
                                        for s in summaries])]
    for n in range(kmax + 1):
        rows.append((f"bursts n={n}", [f"{f[n] * 100:.2f}%" if n < len(f) else "-" for f in fr]))
    rows.append(("Lava wall time", [f"{s['wall_s']:.1f} s" for s in summaries]))
    w0 = max(len(r[0]) for r in rows) + 2
    widths = [max(len(s["name"]), *(len(r[1][j]) for r in rows)) + 2
              for j, s in enumerate(summaries)]
    lines = [f"compare: {summaries[0]['samples']} {dataset} test samples, {encoding} encoding, "
             f"one Lava run per model",
             " " * w0 + "".join(s["name"].rjust(w) for s, w in zip(summaries, widths))]
    lines.append("-" * len(lines[1]))
    for label, vals in rows:
        lines.append(label.ljust(w0) + "".join(v.rjust(w) for v, w in zip(vals, widths)))
    lines.append("spikes: unit spikes (burst counts n) over all neuron layers / (neurons x "
                 "samples x T); SynOps: unit events x fan-out; bursts: share of neuron-steps")
    return "\n".join(lines)


def register(sub) -> None:
    """``qblif compare`` (registered by :mod:`qblif.cli.main` when that command runs)."""
    from qblif.core.data import DATASETS
    p = sub.add_parser("compare", help="run two models on the same test samples in Lava: "
                       "accuracy, spikes, SynOps, burst histograms (table, --plot figure)")
    p.add_argument("models", nargs=2, metavar="MODEL.net")
    p.add_argument("--dataset", choices=DATASETS, required=True)
    p.add_argument("--samples", type=int, default=20, help="test images")
    p.add_argument("--encoding", choices=ENCODINGS, default="graded")
    p.add_argument("--plot", metavar="FILE.png", help="save the side-by-side figure")
    p.set_defaults(func=cmd_compare)


def cmd_compare(args) -> int:
    """``qblif compare A.net B.net --dataset D [--samples N] [--encoding E] [--plot F.png]``."""
    if args.samples < 1:
        raise viz.PlotError(f"--samples={args.samples} must be >= 1")
    for p in args.models:
        if not os.path.isfile(p):
            raise viz.PlotError(f"model file {p} does not exist")
    if args.plot:
        viz.check_plot_path(args.plot)
    summaries = run_models(args.models, args.dataset, args.samples, args.encoding,
                           progress=True)
    print(compare_table(summaries, args.dataset, args.encoding))
    if args.plot:
        fig = viz.plot_comparison(summaries, title=(
            f"{' vs '.join(s['name'] for s in summaries)}: {args.samples} {args.dataset} test "
            f"samples, {args.encoding} encoding"))
        viz.save_png(fig, args.plot)
        print(f"plot: {args.plot}")
    return 0
