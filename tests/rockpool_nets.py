"""Rockpool networks, their NIR export (Rockpool's own node mapping) and their float
simulation in Rockpool, for tests/nir/test_nir_producers.py and bench/bench_nir.py.

Rockpool 3.1.0's ``rockpool.nn.modules.to_nir`` fails under nir 1.0.8: it traces with a
``(1, N)`` sample and passes no ``ignore_dims`` to nirtorch, so the ``Input`` node gets the
shape ``(1, N)`` (or ``(B, T, N)``) and nir's type inference refuses the first ``Linear``
(``input.output: [[1 8]] -> 0_LinearTorch.input: [[8]]``). :func:`export` calls the same
two pieces ``to_nir`` calls, nirtorch's ``extract_nir_graph`` with Rockpool's node mapping
(``rockpool.nn.modules.torch.nir._extract_rockpool_module``), with a ``(1, 1, N)`` sample
and ``ignore_dims=[0, 1]`` (batch and time): the nodes are Rockpool's, unchanged.

What the file says is not Rockpool's model (the NIR semantics, docs/nir.md):
``LIFTorch`` steps ``isyn = beta * (isyn + x)``, ``v = alpha * v + isyn + bias`` with
``alpha = exp(-dt/tau_mem)``, ``beta = exp(-dt/tau_syn)``, ``floor(v / threshold)`` spikes
(at most ``max_spikes_per_dt``) and reset by subtraction; its export writes a ``CubaLIF``
with the same ``tau_syn``, ``tau_mem``, ``w_in = 1``, ``r = tau_mem * alpha / dt``,
``v_leak = 0`` (the bias is dropped) and ``v_reset = 0``. NIR's Euler step at ``dt`` then
adds ``alpha * dt / tau_syn`` of the input to the voltage where Rockpool adds ``beta``
(``tau_syn / dt`` times less: 20x at the defaults), decays by ``1 - dt/tau`` instead of
``exp(-dt/tau)``, and resets to zero. :func:`restate` rewrites each ``CubaLIF`` into the
NIR parameters whose Euler step at ``dt`` is Rockpool's update (how Rockpool's own
``from_nir`` reads the taus back: exponential decays at its ``dt``); the reset by
subtraction has no NIR field and stays reset to zero.
"""
from __future__ import annotations

import numpy as np
import torch

from rockpool.nn.combinators import Sequential
from rockpool.nn.modules import LIFTorch, LinearTorch

DT = 1e-3       # Rockpool's default time step (LIFTorch dt)


def mlp(sizes, tau_mem=0.02, tau_syn=0.02, thr=1.0, max_spikes=1):
    """LinearTorch -> LIFTorch per layer (no biases: the export drops a LIFTorch bias), with
    Rockpool's ``PeriodicExponential`` surrogate (its ``StepPWL`` default has no gradient
    below ``threshold - 0.5``: output neurons that fall silent in training stay so)."""
    from rockpool.nn.modules.torch.lif_torch import PeriodicExponential
    mods = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        mods += [LinearTorch((a, b)),
                 LIFTorch(b, tau_mem=torch.full((b,), tau_mem), tau_syn=torch.full((b,), tau_syn),
                          threshold=torch.full((b,), thr), dt=DT,
                          max_spikes_per_dt=torch.tensor(float(max_spikes)),
                          spike_generation_fn=PeriodicExponential)]
    return Sequential(*mods)


def freeze_neurons(net) -> list:
    """The trainable weights only (taus, thresholds and the bias that the export drops are
    kept): the parameters to hand an optimizer."""
    params = []
    for name, p in net.named_parameters():
        if name.endswith(".weight"):
            params.append(p)
        else:
            p.requires_grad_(False)
    return params


def graph(net, n_in: int):
    """Rockpool's node mapping through nirtorch with the batch and time dims ignored (module
    docstring); the ``nir.NIRGraph``, type-checked."""
    from nirtorch import extract_nir_graph
    from rockpool.nn.modules.torch.nir import _extract_rockpool_module
    g = extract_nir_graph(net, _extract_rockpool_module, torch.zeros(1, 1, n_in),
                          model_name="rockpool", ignore_dims=[0, 1])
    g.infer_types()         # nirtorch 2.x builds its graphs unchecked
    return g


def restate(g, dt: float = DT):
    """Each ``CubaLIF`` of Rockpool's graph rewritten so that NIR's Euler step at ``dt`` is
    Rockpool's update: ``tau' = dt / (1 - exp(-dt/tau))`` (both taus), ``w_in' = beta *
    tau_syn' / dt``, ``r' = tau_mem' / dt``. In place; returns ``g``."""
    import nir
    for node in g.nodes.values():
        if isinstance(node, nir.CubaLIF):
            ts, tm = np.asarray(node.tau_syn, np.float64), np.asarray(node.tau_mem, np.float64)
            beta = np.exp(-dt / ts)
            node.tau_syn = dt / (1 - beta)
            node.tau_mem = dt / (1 - np.exp(-dt / tm))
            node.w_in = beta * node.tau_syn / dt
            node.r = node.tau_mem / dt
    return g


def export(net, n_in: int, path, rockpool_semantics: bool = False) -> None:
    """Rockpool's NIR export written to ``path`` (``rockpool_semantics``: :func:`restate`d)."""
    import nir
    g = graph(net, n_in)
    nir.write(str(path), restate(g) if rockpool_semantics else g)


def run(net, x, steps: int) -> list:
    """Rockpool's own float run: per LIFTorch layer spikes ``(S, T, n)`` (the last one
    differentiable: Rockpool's record holds detached copies), the input ``x`` ``(S, n_in)``
    presented on every step, states zero."""
    net.reset_state()
    out, _, rec = net(x.unsqueeze(1).expand(-1, steps, -1), record=True)
    keys = sorted((k for k in rec if k.endswith("LIFTorch_output")),
                  key=lambda k: int(k.split("_")[0]))
    return [rec[k] for k in keys[:-1]] + [out]


@torch.no_grad()
def simulate(net, frames, steps: int) -> list:
    """:func:`run` on numpy frames, as numpy arrays."""
    return [r.numpy() for r in run(net, torch.as_tensor(np.asarray(frames, np.float32)), steps)]
