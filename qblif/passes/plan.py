"""Emission planning: choose the Lava process of each neuron layer and its reset offset.

Neuron processes: QB-LIF layers -> ``qblif.lava.procs.qblif.QBLIF``; CUBA layers ->
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

from qblif.ir import PROCS, layers
from qblif.passes.declare import declare


SDNN_PROC = {False: "SigmaDelta", True: "Sigma"}


@declare(reads=("layer.depth", "layer.kind", "layer.neuron", "layer.proc",
               "layer.reset_offset",
               "layer.synapse"),
         writes=("layer.depth", "layer.reset_offset", "layer.proc", "graph.depth",
               "graph.stateful", "graph.input_neuron"),
         requires=())
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
            elif n.graded_spike:
                ly.proc = "GradedLIF"
            else:
                ly.proc = "LIF" if (n.kind == "CUBA" and scalar) else "QBLIF"
        if ly.kind == "average":   # read out on the host from its producer's window
            prev = g.nodes[ly.index - 1]["layer"]
            ly.depth, ly.reset_offset, ly.proc = prev.depth, prev.reset_offset, "host"
    g.graph["depth"] = depth
    odd = [ly.index for ly in layers(g) if ly.proc is not None and ly.proc not in PROCS]
    assert not odd, f"plan_emission: layers {odd} got a process outside ir.PROCS"
    head = layers(g)[0]   # an input layer with a neuron (a NetX block): its proc, else None
    g.graph["input_neuron"] = head.proc if head.kind == "input" else None
    g.graph["stateful"] = any(ly.neuron is not None and ly.neuron.kind == "SDNN"
                              for ly in layers(g))
    return g


