"""Resource estimation per layer (static part; SynOps are added after a run).

Loihi 2 figures used (Intel, "Taking Neuromorphic Computing to the Next Level
with Loihi 2", technology brief, 2021, Table 1): 128 neuromorphic cores per
chip, up to 1 M neurons and 120 M synapses per chip, i.e. up to 8192 neurons per
core and, on average, 120e6 / 128 = 937,500 synapses per core. The core estimate
of a layer is ``max(ceil(neurons / 8192), ceil(synapses / 937500))``: an
optimistic lower bound that ignores fan-in/axon limits and memory partitioning.
"""
from __future__ import annotations

import math

import numpy as np

from compiler import numeric
from compiler.ir import layers
from compiler.passes.declare import declare

LOIHI2_CORES_PER_CHIP = 128
LOIHI2_NEURONS_PER_CORE = 8192
LOIHI2_SYNAPSES_PER_CORE = 120_000_000 // 128


@declare(reads=("layer.synapse", "layer.in_shape"),
         writes=("layer.resources", "layer.fan_out_vec", "graph.cores", "graph.chips"))
def estimate_resources(g):
    """``layer.resources`` of each synaptic layer: neurons, synapses, fan-in/out, cores;
    ``g.graph`` ``cores`` and ``chips``. (Message bits and lanes are the input edge's
    :class:`compiler.ir.Message`; weight bits/exponent the :class:`compiler.ir.Synapse`.)"""
    total_cores = 0
    for ly in layers(g):
        r = ly.resources
        if not ly.synaptic:
            r.update(neurons=0, synapses=0, cores=0)
            continue
        fo = numeric.fan_out(ly)
        ly.fan_out_vec = fo
        syn = int(fo.sum())
        r.update(neurons=ly.size, synapses=syn,
                 fan_in=syn / ly.size, fan_out=syn / max(1, fo.size))
        r["cores"] = max(math.ceil(ly.size / LOIHI2_NEURONS_PER_CORE),
                         math.ceil(syn / LOIHI2_SYNAPSES_PER_CORE))
        total_cores += r["cores"]
    g.graph["cores"] = total_cores
    g.graph["chips"] = max(1, math.ceil(total_cores / LOIHI2_CORES_PER_CHIP))
    return g


def synops_per_step(ly, counts_in: np.ndarray) -> float:
    """Mean SynOps per step of ``ly``'s input: unit events x fan-out (spec section 4).

    counts_in: presynaptic counts ``(samples, steps, *in_shape)``.
    """
    c = np.asarray(counts_in, np.int64)
    per = (c * ly.fan_out_vec.reshape((1, 1) + ly.fan_out_vec.shape)).reshape(c.shape[0], c.shape[1], -1)
    return float(per.sum(axis=2).mean())
