"""snnTorch networks, their NIR export (snnTorch's own exporter) and their float simulation
in snnTorch, for tests/test_nir_snntorch.py and bench/bench_nir.py.

snnTorch's exporter writes every neuron with ``v_reset = 0`` whatever its reset mechanism,
and NIR's reset takes effect on the step of the spike: the networks here use
``reset_mechanism="zero", reset_delay=False``, the snnTorch semantics that NIR states.
"""
from __future__ import annotations

import numpy as np
import torch

import snntorch as snn

RESET = dict(reset_mechanism="zero", reset_delay=False, init_hidden=True)


def leaky(shape, beta=0.8, thr=1.0, output=False, reset=None):
    """``reset``: snnTorch keyword arguments of the reset (default :data:`RESET`)."""
    return snn.Leaky(beta=torch.full(shape, beta), threshold=torch.full(shape, thr),
                     output=output, **(RESET if reset is None else reset))


def synaptic(shape, alpha=0.5, beta=0.75, thr=1.0, output=False):
    return snn.Synaptic(alpha=torch.full(shape, alpha), beta=torch.full(shape, beta),
                        threshold=torch.full(shape, thr), output=output, **RESET)


def rleaky(n, beta=0.8, thr=1.0, output=False, rec_gain=1.0):
    """snnTorch's recurrent Leaky (all-to-all ``nn.Linear`` feedback, scaled by
    ``rec_gain``), reset to zero on the spike."""
    m = snn.RLeaky(beta=torch.full((n,), beta), threshold=torch.full((n,), thr),
                   linear_features=n, all_to_all=True, output=output, **RESET)
    with torch.no_grad():
        m.recurrent.weight.mul_(rec_gain)
    return m


def rsynaptic(n, alpha=0.5, beta=0.75, thr=1.0, output=False, rec_gain=1.0):
    """snnTorch's recurrent Synaptic with an unbiased feedback (a bias into the synaptic
    current is not representable). snnTorch 1.0.0's ``RSynaptic.forward`` fails with
    ``reset_delay=False`` (it reads the unset ``spk`` argument), so this one keeps
    snnTorch's default one-step-late reset, which NIR's export does not state."""
    m = snn.RSynaptic(alpha=torch.full((n,), alpha), beta=torch.full((n,), beta),
                      threshold=torch.full((n,), thr), linear_features=n, all_to_all=True,
                      output=output, reset_mechanism="zero", init_hidden=True)
    with torch.no_grad():
        m.recurrent.weight.mul_(rec_gain)
        m.recurrent.bias.zero_()
    return m


def export(net, in_shape, path) -> None:
    """snnTorch's own NIR export (nirtorch tracing with a batch of one), written to ``path``."""
    import nir
    from snntorch.export_nir import export_to_nir
    graph = export_to_nir(net, torch.zeros((1,) + tuple(in_shape)), ignore_dims=[0])
    nir.write(str(path), graph)


def spiking_modules(net) -> list:
    return [m for m in net.modules()
            if isinstance(m, (snn.Leaky, snn.Synaptic, snn.RLeaky, snn.RSynaptic))]


@torch.no_grad()
def simulate(net, frames, steps: int) -> list:
    """snnTorch's float run: per spiking layer (in order) spikes ``(S, T, *shape)``; the
    frames are presented unchanged on every step, states zero at the start."""
    from snntorch import utils
    mods = spiking_modules(net)
    rec = {id(m): [] for m in mods}
    hooks = [m.register_forward_hook(
        lambda mod, _in, out: rec[id(mod)].append((out[0] if isinstance(out, tuple) else out)
                                                  .detach().numpy().copy()))
             for m in mods]
    try:
        utils.reset(net)
        x = torch.as_tensor(np.asarray(frames, np.float32))
        for _ in range(steps):
            net(x)
    finally:
        for h in hooks:
            h.remove()
    return [np.stack(rec[id(m)], axis=1) for m in mods]
