"""Plots of a run's recorded burst counts (matplotlib ``Figure`` objects, no display needed).

Everything here works from plain arrays, so it serves any engine (the Lava run, the numpy
oracle :func:`qblif.exact.oracle.forward`, SLAYER's quantized forward):

    counts: ``{layer: int array (S, T, *shape)}``, the burst count n (0..K unit spikes) of
    every neuron at each of the T steps of each of the S samples, as
    :meth:`qblif.CompiledNetwork.run` returns it.

Per-layer metadata is optional: ``max_burst`` maps a layer to its K (CUBA: 1), or to ``None``
for a graded (SDNN) layer, whose signed messages are not bursts (no histogram; one event per
non-zero message); an int applies to every layer; missing layers take K = the largest count
seen (at least 1). ``names`` maps a layer to a label (default ``"layer i"``).

Figures are built with :class:`matplotlib.figure.Figure` (no pyplot, no global state, no
window); :func:`save_png` writes one atomically at a fixed pixel size (``figsize x dpi``).
Plots: :func:`plot_raster`, :func:`plot_burst_histogram`, :func:`plot_activity`, the
composite :func:`plot_run` (``qblif run --plot``), and :func:`plot_comparison`
(``qblif compare --plot``). The numbers behind them: :func:`burst_histogram`,
:func:`activity`.
"""
from __future__ import annotations

import io
from typing import Mapping, Optional, Sequence, Union

import numpy as np

from qblif.core.errors import QblifError
from qblif.core.fileio import atomic_write_bytes, writable_problem

Counts = Mapping[object, np.ndarray]
MaxBurst = Union[None, int, Mapping[object, Optional[int]]]

DEFAULT_DPI = 100
RASTER_MAX_NEURONS = 200      # rows of a raster; larger layers show their most active neurons
RASTER_SAMPLES = 10           # samples in a raster by default


class PlotError(QblifError, ValueError):
    """Bad plot input: an empty run, an unknown layer, an unwritable file (one line)."""


# ----------------------------------------------------------------------------- the numbers

def check_counts(counts: Counts) -> dict:
    """Validate a run's ``{layer: (S, T, *shape)}`` counts; return them as int64 arrays.

    The ``("u", i)`` / ``("v", i)`` neuron states of a ``record_uv`` run are left out. Raises
    :class:`PlotError` for an empty run (no layer, no sample or no step) or a layer whose
    array is not integer ``(S, T, ...)``.
    """
    counts = {k: v for k, v in (counts or {}).items()
              if not (isinstance(k, tuple) and k[:1] in (("u",), ("v",)))}
    if not counts:
        raise PlotError("empty run: no layer was recorded")
    out = {}
    for key, value in counts.items():
        a = np.asarray(value)
        if a.ndim < 2 or a.dtype.kind not in "iub":
            raise PlotError(f"layer {key}: counts must be integers (samples, steps, ...), got "
                            f"{a.dtype} {a.shape}")
        if a.shape[0] == 0 or a.shape[1] == 0 or a.size == 0:
            raise PlotError(f"empty run: layer {key} has shape {a.shape} (no sample, step or "
                            f"neuron)")
        out[key] = a.astype(np.int64, copy=False)
    return out


def _k(max_burst: MaxBurst, layer, values: np.ndarray) -> Optional[int]:
    """K of ``layer`` (None: graded/SDNN) from ``max_burst`` or, if unknown, from the data."""
    if isinstance(max_burst, Mapping) and layer in max_burst:
        return None if max_burst[layer] is None else int(max_burst[layer])
    if isinstance(max_burst, (int, np.integer)):
        return int(max_burst)
    if values.min() < 0:                     # signed graded messages: not bursts
        return None
    return max(1, int(values.max()))


def _name(names: Optional[Mapping], layer) -> str:
    return str(names[layer]) if names and layer in names else f"layer {layer}"


def _events(values: np.ndarray, k: Optional[int]) -> np.ndarray:
    """Unit events: the burst count n, or one per non-zero graded (SDNN) message."""
    return values if k is not None else (values != 0).astype(np.int64)


def burst_histogram(counts: Counts, max_burst: MaxBurst = None) -> dict:
    """``{layer: int64 (K + 1,)}``: how many neuron-steps (over all samples, steps and
    neurons) emitted a burst of n = 0..K. Graded (SDNN) layers are left out.

    Raises :class:`PlotError` if a count lies outside 0..K.
    """
    hist = {}
    for layer, v in check_counts(counts).items():
        k = _k(max_burst, layer, v)
        if k is None:
            continue
        lo, hi = int(v.min()), int(v.max())
        if lo < 0 or hi > k:
            raise PlotError(f"layer {layer}: burst counts span {lo}..{hi}, outside 0..K={k}")
        hist[layer] = np.bincount(v.ravel(), minlength=k + 1).astype(np.int64)
    return hist


def activity(counts: Counts, max_burst: MaxBurst = None) -> dict:
    """``{layer: float (S * T,)}``: unit spikes per neuron at each step, samples one after
    the other (sample s, step t at position ``s * T + t``)."""
    act = {}
    for layer, v in check_counts(counts).items():
        e = _events(v, _k(max_burst, layer, v))
        act[layer] = e.reshape(e.shape[0] * e.shape[1], -1).mean(axis=1)
    return act


def spikes_per_neuron_step(counts: Counts, max_burst: MaxBurst = None) -> float:
    """Unit spikes over all layers / (neurons x samples x steps): the run's mean activity."""
    c = check_counts(counts)
    total = sum(float(_events(v, _k(max_burst, i, v)).sum()) for i, v in c.items())
    return total / sum(v.size for v in c.values())


def _select_samples(n_samples: int, samples) -> np.ndarray:
    if samples is None:
        return np.arange(min(n_samples, RASTER_SAMPLES))
    if isinstance(samples, (int, np.integer)):
        if samples < 1:
            raise PlotError(f"samples={samples}: need at least 1")
        return np.arange(min(int(samples), n_samples))
    idx = np.asarray(list(samples), dtype=np.int64)
    if idx.size == 0 or idx.min() < 0 or idx.max() >= n_samples:
        raise PlotError(f"samples {idx.tolist()} out of range: the run has {n_samples} "
                        f"sample(s)")
    return idx


def default_layer(counts: Counts, max_burst: MaxBurst = None):
    """The layer a raster shows by default: the first (lowest key) with bursts (K > 1), else
    the first layer."""
    c = check_counts(counts)
    keys = sorted(c, key=str) if not all(isinstance(k, int) for k in c) else sorted(c)
    for key in keys:
        k = _k(max_burst, key, c[key])
        if k is not None and k > 1:
            return key
    return keys[0]


# ----------------------------------------------------------------------------- figures

def _new_figure(figsize):
    from matplotlib.figure import Figure
    return Figure(figsize=figsize, dpi=DEFAULT_DPI, layout="constrained")


def _burst_cmap(k: int):
    """Discrete colours: n = 0 white, 1..K light to dark."""
    from matplotlib import colormaps
    from matplotlib.colors import BoundaryNorm, ListedColormap
    ramp = colormaps["plasma_r"](np.linspace(0.15, 1.0, k))
    cmap = ListedColormap(np.vstack([[1, 1, 1, 1], ramp]))
    return cmap, BoundaryNorm(np.arange(-0.5, k + 1.5), cmap.N)


def raster_rows(spikes_per_neuron: np.ndarray, max_neurons: int) -> np.ndarray:
    """Which neurons (flat indices, ascending) a raster of a large layer shows: among those that
    spiked, ``max_neurons`` evenly spaced by index (a cross-section of the layer, not only its
    saturated neurons); all that spiked, then silent ones, if fewer."""
    active = np.flatnonzero(spikes_per_neuron)
    if len(active) > max_neurons:
        return active[np.linspace(0, len(active) - 1, max_neurons).round().astype(np.int64)]
    silent = np.flatnonzero(spikes_per_neuron == 0)[:max_neurons - len(active)]
    return np.sort(np.concatenate([active, silent]))


def _draw_raster(fig, ax, counts, layer, samples, max_burst, names, max_neurons):
    c = check_counts(counts)
    if layer is None:
        layer = default_layer(c, max_burst)
    if layer not in c:
        raise PlotError(f"unknown layer {layer!r}: the run recorded layer(s) "
                        f"{', '.join(map(str, sorted(c, key=str)))}")
    v = c[layer]
    idx = _select_samples(v.shape[0], samples)
    k = _k(max_burst, layer, v)
    steps = v.shape[1]
    block = v[idx].reshape(len(idx), steps, -1)                 # (s, T, N)
    n_neurons = block.shape[2]
    ev = np.abs(block)
    if n_neurons > max_neurons:
        keep = raster_rows(ev.sum(axis=(0, 1)), max_neurons)
        ylabel = f"{len(keep)} of {n_neurons} neurons (spiking, evenly spaced)"
    else:
        keep = np.arange(n_neurons)
        ylabel = "neuron"
    img = block[:, :, keep].reshape(len(idx) * steps, len(keep)).T    # (neurons, s*T)
    if k is not None:
        cmap, norm = _burst_cmap(k)
        im = ax.imshow(img, aspect="auto", interpolation="nearest", cmap=cmap, norm=norm,
                       origin="lower")
        cb = fig.colorbar(im, ax=ax, ticks=range(k + 1), pad=0.01)
        cb.set_label("burst size n")
    else:
        lim = max(1, int(np.abs(img).max()))
        im = ax.imshow(img, aspect="auto", interpolation="nearest", cmap="coolwarm",
                       vmin=-lim, vmax=lim, origin="lower")
        fig.colorbar(im, ax=ax, pad=0.01).set_label("graded message")
    if steps > 1 and len(idx) > 1:
        for s in range(1, len(idx)):
            ax.axvline(s * steps - 0.5, color="0.75", lw=0.6)
    ax.set_xticks(np.arange(len(idx)) * steps + (steps - 1) / 2)
    ax.set_xticklabels([str(i) for i in idx], fontsize=7 if len(idx) > 12 else 9)
    if len(keep) < n_neurons:
        ax.set_yticks([])
    ax.set_xlabel(f"sample ({steps} steps each)")
    ax.set_ylabel(ylabel)
    spikes = int(_events(block, k).sum())
    ax.set_title(f"{_name(names, layer)}: spike raster, {spikes} unit spikes in the "
                 f"{len(idx)} sample(s) shown" + (f" (K={k})" if k is not None else ""),
                 fontsize=10)
    return layer


def plot_raster(counts: Counts, layer=None, samples=None, max_burst: MaxBurst = None,
                names: Optional[Mapping] = None, max_neurons: int = RASTER_MAX_NEURONS,
                figsize=(9, 4.5)):
    """Spike raster of ``layer`` (default :func:`default_layer`) over ``samples`` (an int:
    the first N, or a list of indices; default the first 10): x = step (samples one after
    the other), y = neuron (flattened layer index; at most ``max_neurons`` rows, chosen by
    :func:`raster_rows`), colour = burst size n (white: no spike). Returns a Figure.
    """
    fig = _new_figure(figsize)
    _draw_raster(fig, fig.add_subplot(), counts, layer, samples, max_burst, names, max_neurons)
    return fig


def _draw_histogram(ax, hist: Mapping, names, kmax=None, title="burst sizes"):
    if not hist:
        ax.text(0.5, 0.5, "no burst layers", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        return
    from matplotlib import colormaps
    kmax = kmax if kmax is not None else max(len(h) - 1 for h in hist.values())
    width = 0.8 / len(hist)
    colours = colormaps["tab10"].colors
    for j, (layer, h) in enumerate(hist.items()):
        x = np.arange(len(h)) - 0.4 + width * (j + 0.5)
        ax.bar(x, h, width=width, color=colours[j % len(colours)], label=_name(names, layer),
               gid=f"hist:{layer}")
    ax.set_yscale("log")
    ax.set_xticks(np.arange(kmax + 1))
    ax.set_xlim(-0.6, kmax + 0.6)
    ax.set_xlabel("burst size n (unit spikes per neuron per step)")
    ax.set_ylabel("neuron-steps")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)


def plot_burst_histogram(counts: Counts, max_burst: MaxBurst = None,
                         names: Optional[Mapping] = None, figsize=(6, 4)):
    """Histogram of burst sizes n = 0..K per layer (bars grouped by n, one colour per layer,
    log scale): how many neuron-steps of the run emitted each n. Returns a Figure whose
    attribute ``burst_counts`` is the plotted :func:`burst_histogram`."""
    hist = burst_histogram(counts, max_burst)
    fig = _new_figure(figsize)
    _draw_histogram(fig.add_subplot(), hist, names)
    fig.burst_counts = hist
    return fig


def _draw_activity(ax, act: Mapping, names, steps: int):
    from matplotlib import colormaps
    colours = colormaps["tab10"].colors
    n = max(len(a) for a in act.values())
    for j, (layer, a) in enumerate(act.items()):
        ax.plot(np.arange(len(a)), a, color=colours[j % len(colours)], lw=1.2,
                marker="o" if n <= 60 else None, ms=3, label=_name(names, layer))
    samples = n // max(steps, 1)
    if steps > 1 and samples <= 40:
        for s in range(1, samples):
            ax.axvline(s * steps - 0.5, color="0.85", lw=0.6, zorder=0)
    ax.set_xlim(-0.5, n - 0.5)
    ax.set_ylim(bottom=0)
    ax.set_xlabel(f"step (samples one after the other, {steps} steps each)")
    ax.set_ylabel("spikes / neuron / step")
    ax.set_title("activity per layer over time", fontsize=10)
    ax.legend(fontsize=8)


def plot_activity(counts: Counts, max_burst: MaxBurst = None, names: Optional[Mapping] = None,
                  figsize=(8, 3.5)):
    """Unit spikes per neuron per step of every layer over the run's steps (samples one after
    the other). Returns a Figure whose attribute ``activity`` is the plotted
    :func:`activity`."""
    c = check_counts(counts)
    act = activity(c, max_burst)
    fig = _new_figure(figsize)
    _draw_activity(fig.add_subplot(), act, names, next(iter(c.values())).shape[1])
    fig.activity = act
    return fig


def plot_run(counts: Counts, layer=None, samples=None, max_burst: MaxBurst = None,
             names: Optional[Mapping] = None, title: Optional[str] = None,
             max_neurons: int = RASTER_MAX_NEURONS, figsize=(11, 8)):
    """The composite of ``qblif run --plot``: raster of ``layer`` and ``samples`` on top, burst
    histogram (bottom left) and activity over time of every layer, limited to the raster's
    samples (bottom right). Returns a Figure with ``burst_counts`` (whole run) and
    ``activity`` (the raster's samples) attributes."""
    c = check_counts(counts)
    first = next(iter(c.values()))
    idx = _select_samples(first.shape[0], samples)
    fig = _new_figure(figsize)
    grid = fig.add_gridspec(2, 2, height_ratios=(1.25, 1))
    layer = _draw_raster(fig, fig.add_subplot(grid[0, :]), c, layer, idx, max_burst, names,
                         max_neurons)
    hist = burst_histogram(c, max_burst)
    _draw_histogram(fig.add_subplot(grid[1, 0]), hist, names,
                    title=f"burst sizes, all {first.shape[0]} sample(s)")
    act = activity({k: v[idx] for k, v in c.items()}, max_burst)
    _draw_activity(fig.add_subplot(grid[1, 1]), act, names, first.shape[1])
    if title:
        fig.suptitle(title, fontsize=11)
    fig.burst_counts, fig.activity, fig.raster_layer = hist, act, layer
    return fig


def _wrap(label: str, width: int = 14) -> str:
    """Break a file name at underscores so that side-by-side tick labels do not overlap."""
    lines = [""]
    for part in label.replace("_", "_\0").split("\0"):
        if lines[-1] and len(lines[-1]) + len(part) > width:
            lines.append("")
        lines[-1] += part
    return "\n".join(lines)


def plot_comparison(summaries: Sequence[Mapping], title: Optional[str] = None,
                    figsize=(12, 7.5)):
    """Side by side of two (or more) models run on the same samples (``qblif compare``).

    Each summary: ``name``, ``accuracy`` (fraction), ``spikes_per_neuron_step``,
    ``synops_per_sample`` (unit events x fan-out), optional ``spike_synops_per_sample``
    (those from spikes, without the graded input's), ``histogram`` (``{layer: (K+1,)}`` as
    :func:`burst_histogram`) and optional ``names`` (layer labels). Top row: bars of the
    numbers; bottom row: each model's burst histogram on a shared n axis. Returns a Figure.
    """
    if len(summaries) < 1:
        raise PlotError("nothing to compare")
    from matplotlib import colormaps
    colours = colormaps["Set2"].colors
    fig = _new_figure(figsize)
    outer = fig.add_gridspec(2, 1)
    labels = [str(s["name"]) for s in summaries]
    metrics = [("accuracy", "accuracy (%)", 100.0, "{:.1f}"),
               ("spikes_per_neuron_step", "spikes / neuron / step", 1.0, "{:.3f}"),
               ("synops_per_sample", "SynOps / sample", 1.0, "{:,.0f}")]
    if all(s.get("spike_synops_per_sample") is not None for s in summaries):
        metrics.append(("spike_synops_per_sample", "SynOps / sample from spikes", 1.0,
                        "{:,.0f}"))
    top = outer[0].subgridspec(1, len(metrics))
    bottom = outer[1].subgridspec(1, len(summaries))
    for j, (key, label, scale, fmt) in enumerate(metrics):
        ax = fig.add_subplot(top[0, j])
        vals = [float(s[key]) * scale for s in summaries]
        bars = ax.bar(range(len(vals)), vals, color=[colours[i % len(colours)]
                                                     for i in range(len(vals))])
        for b, v in zip(bars, vals):
            ax.annotate(fmt.format(v), (b.get_x() + b.get_width() / 2, b.get_height()),
                        ha="center", va="bottom", fontsize=8)
        ax.set_xticks(range(len(vals)))
        ax.set_xticklabels([_wrap(x) for x in labels], fontsize=8)
        ax.yaxis.set_major_formatter("{x:,.0f}" if "synops" in key else "{x:g}")
        ax.set_title(label, fontsize=10)
        ax.margins(y=0.15)
    kmax = max((len(h) - 1 for s in summaries for h in s["histogram"].values()), default=1)
    hist_axes = []
    for j, s in enumerate(summaries):
        ax = fig.add_subplot(bottom[0, j], sharey=hist_axes[0] if hist_axes else None)
        _draw_histogram(ax, s["histogram"], s.get("names"), kmax=kmax,
                        title=f"{labels[j]}: burst sizes")
        hist_axes.append(ax)
    if title:
        fig.suptitle(title, fontsize=11)
    return fig


# ----------------------------------------------------------------------------- files

def check_plot_path(path: str) -> None:
    """Raise :class:`PlotError` now (before any long run) unless ``path`` can be written."""
    problem = writable_problem(str(path))
    if problem:
        raise PlotError(f"cannot write plot {path}: {problem}")


def save_png(fig, path: str, dpi: int = DEFAULT_DPI) -> str:
    """Render ``fig`` as PNG (``figsize x dpi`` pixels) and write it to ``path`` atomically."""
    check_plot_path(path)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    atomic_write_bytes(str(path), buf.getvalue())
    return str(path)
