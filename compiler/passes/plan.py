"""Emission planning: choose the Lava process of each neuron layer and its reset offset.

Neuron processes: QB-LIF layers -> ``qblif_lava.process.QBLIF``; CUBA layers ->
Lava ``LIFReset`` (bit-accurate model), except where the threshold is per-neuron
(Lava's LIF holds a scalar ``vth``): those become a ``QBLIF`` with K = 1 and
``reset_mode="zero"``, bit-identical to LIF by spec section 1.

ALIF layers -> Lava's ``ATRLIF``; resonate-and-fire layers -> Lava's ``RF`` (both without
a reset: continuous runs only). An input layer with a CUBA neuron -> ``BiasNeuron`` (the
frames drive its bias; depth 0). A neuron-less dense layer has stock's integrator neuron
(``normalize``) and runs as ``LIF``. An ``average`` layer -> ``host`` (read out on the host
from its producer's window).

SDNN layers -> Lava's ``SigmaDelta`` (ReLU, ``spike_exp = state_exp = 6``, as stock
NetX), ``Sigma`` for a ``sigma_output`` layer, ``Delta`` for an SDNN input layer
(depth 0: a neuron adds no step). These processes have no reset: their state
(sigma, act, residue) runs on across samples, as stock NetX streams them; a
streamed sample is then not independent of the previous ones (``g.graph["stateful"]``).

Timing: the input process sends sample s on global steps ``s*T + 1 .. s*T + T``;
every Dense/Conv adds one step, so the layer at synaptic depth d (1 for the first)
sees sample s on steps ``s*T + d + 1 .. s*T + d + T``. Its states are zeroed at
the first of these (``reset_offset = d + 1``, interval T): within its window, the
layer's step j receives the previous layer's step j of the same sample (the
input's frame on every step), so samples never mix.
"""
from __future__ import annotations

import numpy as np

from compiler.ir import layers
from compiler.passes.declare import declare


SDNN_PROC = {False: "SigmaDelta", True: "Sigma"}


@declare(reads=("layer.neuron", "layer.synapse"),
         writes=("layer.depth", "layer.reset_offset", "layer.proc", "graph.depth",
                 "graph.stateful", "graph.input_neuron"))
def plan_emission(g):
    depth = 0
    for ly in layers(g):
        if ly.kind == "input" and ly.neuron is not None:   # depth 0: adds no step
            ly.depth, ly.reset_offset = 0, 1
            ly.proc = "Delta" if ly.neuron.kind == "SDNN" else "BiasNeuron"
        if ly.synaptic:
            depth += 1
            ly.depth = depth
            ly.reset_offset = depth + 1
            n = ly.neuron
            scalar = np.ndim(n.vth) == 0
            if n.kind == "SDNN":
                ly.proc = SDNN_PROC[n.sigma_output]
            elif n.kind == "ALIF":
                ly.proc = "ATRLIF"
            elif n.kind == "RF":
                ly.proc = "RF_IZ" if n.params.get("izhikevich") else "RF"
            elif n.kind == "CUBA" and n.raw.get("gradedSpike"):
                ly.proc = "GradedLIF"
            else:
                ly.proc = "LIF" if (n.kind == "CUBA" and scalar) else "QBLIF"
        if ly.kind == "average":   # read out on the host from its producer's window
            prev = g.nodes[ly.index - 1]["layer"]
            ly.depth, ly.reset_offset, ly.proc = prev.depth, prev.reset_offset, "host"
    g.graph["depth"] = depth
    head = layers(g)[0]   # an input layer with a neuron (a NetX block): its proc, else None
    g.graph["input_neuron"] = head.proc if head.kind == "input" else None
    g.graph["stateful"] = any(ly.neuron is not None and ly.neuron.kind == "SDNN"
                              for ly in layers(g))
    return g


RESET_MODES = ("sample", "none", "netx")


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
    if reset not in RESET_MODES:
        raise ValueError(f"reset={reset!r} (expected one of {', '.join(RESET_MODES)})")
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
