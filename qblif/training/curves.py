"""Training curves of a run (``NAME.png`` beside the card): training loss, validation
accuracy (quantized), validation spikes per neuron per step, and each spiking layer's
learned threshold (float weight units; mean over channels when per channel), by epoch."""
from __future__ import annotations

import io

#: figure size in inches and resolution: the PNG is FIG_SIZE x DPI pixels
FIG_SIZE = (10.0, 7.0)
DPI = 100


def curves_figure(result: dict):
    """A matplotlib ``Figure`` (2 x 2 panels) of ``result["history"]`` (a card's fields)."""
    from matplotlib.figure import Figure
    hist = result.get("history") or []
    ep = [h["epoch"] for h in hist]
    fig = Figure(figsize=FIG_SIZE, dpi=DPI)
    axes = fig.subplots(2, 2)
    (a_loss, a_acc), (a_spk, a_th) = axes
    a_loss.plot(ep, [h["train_loss"] for h in hist], "o-", color="tab:blue")
    a_loss.set(title="training loss", xlabel="epoch", ylabel="cross-entropy")
    a_acc.plot(ep, [100 * h["val_accuracy"] for h in hist], "o-", color="tab:green")
    a_acc.set(title="validation accuracy (quantized)", xlabel="epoch", ylabel="%")
    spk = [h.get("val_spikes_per_neuron_step") for h in hist]
    if any(s is not None for s in spk):
        a_spk.plot(ep, [float("nan") if s is None else s for s in spk], "o-", color="tab:red")
    else:
        a_spk.text(0.5, 0.5, "no spikes (ReLU)", ha="center", va="center",
                   transform=a_spk.transAxes)
    a_spk.set(title="spikes / neuron / step (validation)", xlabel="epoch", ylabel="unit events")
    layers = sorted({k for h in hist for k in (h.get("thresholds") or {})}, key=int)
    for k in layers:
        a_th.plot(ep, [(h.get("thresholds") or {}).get(k, float("nan")) for h in hist], "o-",
                  label=f"block {k}")
    if layers:
        a_th.legend(fontsize="small")
    else:
        a_th.text(0.5, 0.5, "no thresholds", ha="center", va="center", transform=a_th.transAxes)
    a_th.set(title="threshold per layer (float weight units)", xlabel="epoch", ylabel="theta")
    for a in axes.flat:
        a.grid(alpha=0.3)
        if ep:
            a.set_xticks(ep if len(ep) <= 12 else ep[::max(1, len(ep) // 10)])
    fig.suptitle(f"{result.get('file') or ''} {result.get('neuron', '')} {result.get('arch', '')} "
                 f"on {result.get('dataset', '')}: test accuracy "
                 f"{100 * result.get('test_accuracy', float('nan')):.2f}%".strip())
    fig.tight_layout()
    return fig


def curves_png(result: dict) -> bytes:
    """:func:`curves_figure` as PNG bytes (``FIG_SIZE`` x ``DPI`` pixels)."""
    buf = io.BytesIO()
    curves_figure(result).savefig(buf, format="png", dpi=DPI)
    return buf.getvalue()
