"""The run schedule of a compiled network: when each layer is reset and which input each
global timestep carries. Lava emission, the Lava source, the oracle, the exact engine and
the API share these two formulas (docs/architecture.md).

Timing (:mod:`qblif.passes.plan`): the source sends sample s on global steps
``s*T + 1 .. s*T + T``; the layer at synaptic depth d sees it on ``s*T + d + 1 ..`` and is
reset at the first of those (``reset_offset = d + 1``).
"""
from __future__ import annotations

import numpy as np

from qblif.core.constants import RUN_RESETS


def reset_schedule(g, ly, steps: int, reset: str = "sample", reset_interval=None,
                   reset_offset: int = 0):
    """``(interval, offset)`` of layer ``ly``'s periodic u/v reset (zeroed before every
    timestep t with ``t % interval == offset % interval``), or None (never reset).

    ``sample``: every sample starts from zero state (interval ``steps``, offset the
    layer's ``reset_offset``, above). ``none``: continuous, never reset. ``netx``: stock
    NetX's ``Network(reset_interval=R, reset_offset=o)``: its blocks, numbered p = 0, 1, ...
    (an input layer with a neuron is block 0), reset at ``t % R == (o + 1 + p) % R``.
    Sigma-delta layers are never reset (stock NetX ignores the reset for them too).
    """
    if reset not in RUN_RESETS:
        raise ValueError(f"reset={reset!r} (expected one of {', '.join(RUN_RESETS)})")
    if ly.neuron is None or ly.neuron.kind == "SDNN" or reset == "none":
        return None
    if reset == "sample":
        return int(steps), int(ly.reset_offset)
    if reset_interval is None or int(reset_interval) < 1:
        raise ValueError(f"reset='netx' needs reset_interval >= 1, got {reset_interval}")
    block = ly.depth if g.graph.get("input_neuron") else ly.depth - 1
    return int(reset_interval), int(reset_offset) + 1 + block


def frame_at(frames: np.ndarray, t: int, steps: int, stream: bool) -> np.ndarray:
    """The input value at global timestep ``t`` (1-based): sample ``s = (t-1) // steps``,
    its step ``j = (t-1) % steps``. ``stream=False``: ``frames`` is ``(S, *shape)`` and
    sample s is held for its ``steps`` steps; ``stream=True``: ``frames`` is
    ``(S, T_in, *shape)`` and step j sends ``frames[s, j]`` (zeros for ``j >= T_in``).
    Zeros after the last sample."""
    s, j = divmod(int(t) - 1, int(steps))
    if s >= frames.shape[0]:
        return np.zeros(frames.shape[2 if stream else 1:], frames.dtype)
    if not stream:
        return frames[s]
    return frames[s, j] if j < frames.shape[1] else np.zeros(frames.shape[2:], frames.dtype)


#: neurons whose state the per-sample reset zeroes at the start of each window
WINDOWED_NEURONS = ("QBLIF", "CUBA")


def t_step_refusal(g, reset: str = "sample"):
    """Why ``T`` simulated steps per sample do not carry the T-step windows of a run of this
    IR, or None where they do.

    With ``reset="sample"`` a layer at depth d is zeroed at the first step of its window (the
    producer's window shifted by one step, :func:`reset_schedule`), so its T-step window is a
    function of its producer's T-step window of the same sample alone, and the input's T
    steps carry every layer's window: the steps past T that a ``T + depth`` (SLAYER
    ``T + latency``) simulation adds change no window. That fails where a window sees more
    than its producer's window: recurrence (its own earlier output, and lava-dl's recurrent
    output delay), axonal delays (a producer's steps before the window, or past its end),
    sigma-delta state (never reset, it streams across samples), neurons without a reset
    (ALIF, RF) and any other reset schedule."""
    if reset != "sample":
        return f"reset={reset!r} (windows are not reset at their start)"
    for ly in (g.nodes[i]["layer"] for i in sorted(g.nodes)):
        if ly.neuron is not None and ly.neuron.kind not in WINDOWED_NEURONS:
            return f"layer {ly.index} has {ly.neuron.kind} neurons (never reset per window)"
        if g.has_edge(ly.index, ly.index) or ly.kind == "dense_rec":
            return f"layer {ly.index} is recurrent"
        if ly.delay is not None and np.any(np.asarray(ly.delay) != 0):
            return f"layer {ly.index} has axonal delays"
    return None
