"""Norse networks, their NIR export (Norse's own exporter) and their float simulation in
Norse, for tests/nir/test_nir_producers.py and bench/bench_nir.py.

Norse 1.1.0's exporter writes ``tau = dt / tau_mem_inv`` (it should be ``1 / tau_mem_inv``)
and ``r = 1``; the NIR Euler step ``dt' / tau`` equals Norse's ``dt * tau_mem_inv`` at
``dt' = dt ** 2``: compile its files with ``dt=NIR_DT``. Its neuron parameters must be
per-neuron tensors (scalars fail nir's type inference)."""
from __future__ import annotations

import numpy as np
import torch

import norse.torch as nt

DT = 1e-3               # Norse's default time step
NIR_DT = DT ** 2        # the dt its NIR files mean (module docstring)


def lif_box(n, tau_inv=100.0, thr=1.0):
    """A Norse LIFBoxCell (NIR ``LIF``, no synaptic current), reset to 0."""
    return nt.LIFBoxCell(nt.LIFBoxParameters(
        tau_mem_inv=torch.full((n,), tau_inv), v_th=torch.full((n,), thr),
        v_leak=torch.zeros(n), v_reset=torch.zeros(n)))


def mlp(sizes, tau_inv=100.0, thr=1.0):
    """Linear -> LIFBoxCell per layer, in a SequentialState."""
    mods = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        mods += [torch.nn.Linear(a, b), lif_box(b, tau_inv, thr)]
    return nt.SequentialState(*mods)


def export(model, n_in, path) -> None:
    import nir
    nir.write(str(path), nt.to_nir(model, torch.zeros(n_in), dt=DT))


def run(model, x, steps: int) -> list:
    """Norse's own float run (differentiable): per spiking layer spikes ``(S, T, n)``, the
    input ``x`` (a tensor) presented on every step, zero states."""
    cells = [j for j, m in enumerate(model) if isinstance(m, nt.LIFBoxCell)]
    states = {j: None for j in cells}
    rec = {j: [] for j in cells}
    for _ in range(steps):
        h = x
        for j, m in enumerate(model):
            if j in states:
                h, states[j] = m(h, states[j])
                rec[j].append(h)
            else:
                h = m(h)
    return [torch.stack(rec[j], dim=1) for j in cells]


@torch.no_grad()
def simulate(model, frames, steps: int) -> list:
    """:func:`run` on numpy frames, as numpy arrays."""
    x = torch.as_tensor(np.asarray(frames, np.float32))
    return [r.numpy() for r in run(model, x, steps)]
