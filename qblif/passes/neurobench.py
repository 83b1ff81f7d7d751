"""NeuroBench's metric names for a compiled network and a run (docs/mapping.md).

neurobench 2.3.0 does not install on this project's pinned torch, so the metrics are defined
here as NeuroBench defines them (Yik et al., "The NeuroBench framework for benchmarking
neuromorphic computing algorithms and systems", Nature Communications 16, 2025, Methods;
neurobench/metrics/static and workload modules):

- ``Footprint``: bytes of the model's parameters as stored; ours: every weight at its
  quantized ``weight_bits`` (not float32), so the chip's figure.
- ``ConnectionSparsity``: zero weights / all weights, over the connection layers.
- ``ActivationSparsity``: zero activations / all activations, over every neuron layer,
  timestep and sample (a burst of n is one non-zero activation).
- ``SynapticOperations``: per sample, summed over timesteps: ``Effective_ACs`` for binary
  inputs and ``Effective_MACs`` for multi-valued (graded) inputs, each non-zero input x its
  connections (zero weights included: NeuroBench counts with the weights set to one), and
  ``Dense``: every input x its connections, as if no input were zero (binary encoding: every
  thermometer lane of every input).
"""
from __future__ import annotations

import numpy as np

from qblif.ir import in_message, layers
from qblif.passes.mapping import fan_in


def footprint(g) -> int:
    """Bytes of the synaptic layers' weights at their quantized widths (ceil per layer)."""
    bits = sum(np.asarray(ly.weight).size * ly.weight_bits for ly in layers(g) if ly.synaptic)
    return int(-(-bits // 8))


def connection_sparsity(g) -> float:
    """Zero weights over all weights of the synaptic layers (NeuroBench's formula)."""
    ws = [np.asarray(ly.weight) for ly in layers(g) if ly.synaptic]
    total = sum(w.size for w in ws)
    return float(sum(int((w == 0).sum()) for w in ws) / total) if total else 0.0


def activation_sparsity(g, out: dict) -> float:
    """Zero activations over all activations: ``out`` ``{layer: counts (S, T, *shape)}`` of
    the layers with neurons (a run's output)."""
    zeros = total = 0
    for ly in layers(g):
        if ly.neuron is not None and ly.index in out:
            a = np.asarray(out[ly.index])
            zeros += int((a == 0).sum())
            total += a.size
    return zeros / total if total else 0.0


def synaptic_operations(g, events: dict, encoding: str) -> dict:
    """``{"Effective_ACs", "Effective_MACs", "Dense"}`` per sample. events: ``{layer: unit
    events (S, T, *in_shape)}`` (a run's ``last_run["events"]``); ``binary``: a burst of n is
    n binary inputs (ACs), ``graded``: one multi-valued input (a MAC when values exceed 1)."""
    acs = macs = dense = 0
    n_s = 1
    for i, ev in events.items():
        ly = g.nodes[i]["layer"]
        ev = np.asarray(ev, np.int64)
        n_s = ev.shape[0]
        msg = in_message(g, i)
        lanes = 1 if encoding == "graded" or msg.graded_only else max(1, msg.max)
        every = fan_in(ly, np.full(ly.in_shape, ev.shape[0] * ev.shape[1] * lanes),
                       zeros=True).sum()
        dense += int(every)
        ops = int(fan_in(ly, (ev if encoding == "binary" else ev != 0).sum((0, 1)),
                         zeros=True).sum())
        if encoding == "graded" and ev.max(initial=0) > 1:
            macs += ops
        else:
            acs += ops
    return {"Effective_ACs": acs / n_s, "Effective_MACs": macs / n_s, "Dense": dense / n_s}
