"""Feed-forward networks train on the T-step window, time folded into the batch, with the
fused quantized neuron (qblif/training/slayer/fused.py); the chip runs T + depth steps.

(1) every spike of the windowed training forward (autograd on) of an exported file equals the
    exact engine's run of the compiled graph and, on a few samples, the Lava graph's;
(2) the fused kernel equals the step-by-step quantized neuron bit for bit, and its gradients
    equal autograd's of the step-by-step formulas (wraps, clips, both resets, per-channel);
(3) the float32 folded synapse equals the float64 sum where it claims to be exact.
"""
from __future__ import annotations

import os

import numpy as np
import pytest
import torch

import qblif
from qblif.core.data import load_dataset
from qblif.core.encoding import quantize_intensity
from qblif.training.models import SpikingNet
from qblif.training.slayer import load_network
from qblif.training.slayer.block import folded_synapse
from qblif.training.slayer.fused import QuantizedBurst, library
from qblif.training.slayer.neuron import Neuron
from qblif.verify import exact_counts, first_mismatch

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
needs_cc = pytest.mark.skipif(library() is None, reason="no C compiler: the torch path runs")


def _window_counts(path, dataset, frames, steps):
    """Every layer's counts of the windowed training forward, ``{index: (S, T, *shape)}``."""
    model = SpikingNet.from_network(load_network(path), dataset)
    assert model.windowed
    x = torch.tensor(frames, dtype=torch.float32).unsqueeze(-1)
    x = x.expand(*frames.shape, steps).contiguous()
    with torch.enable_grad():
        out, inputs = model(x, record=True)
    outs = inputs[1:] + [out]
    return {i: np.rint(np.moveaxis(y.detach().numpy(), -1, 1)).astype(np.int32)
            for i, y in enumerate(outs)}


def _frames(net, dataset, n):
    images, _ = load_dataset(dataset, "test", limit=n)
    frames = quantize_intensity(images, int(net.ir.graph["input_bits"]))
    return frames.reshape((n,) + net.input_shape)


@pytest.mark.parametrize("name,dataset,lava", [("digits_qblif_mlp", "digits", 3),
                                               ("fmnist_qblif_conv", "fashion-mnist", 0)])
def test_window_forward_equals_chip_run(name, dataset, lava):
    path = os.path.join(ROOT, "netx_models", f"{name}.net")
    with qblif.compile(path, encoding="graded") as net:
        steps = int(net.ir.graph["timesteps"])
        frames = _frames(net, dataset, 12)
        want = exact_counts(net.ir, frames, steps)          # T + depth global steps
        got = _window_counts(path, dataset, frames, steps)
        got = {i: got[i] for i in want}
        assert sum(int(c.sum()) for c in want.values()) > 0
        assert first_mismatch(want, got, ("exact", "window")) is None
        if lava:
            out = net.run(frames[:lava], steps)
            cut = {i: c[:lava] for i, c in got.items()}
            assert first_mismatch(out, cut, ("Lava", "window")) is None


CASES = [  # (reset zero, K, iDecay, vDecay, input scale: large values wrap u and clip v)
    (False, 4, 4096, 0, 40), (False, 3, 1000, 300, 100000), (True, 1, 2000, 100, 100000),
    (True, 1, 4096, 0, 40)]


@needs_cc
@pytest.mark.parametrize("zero,k,i_decay,v_decay,scale", CASES)
def test_fused_equals_step_by_step(zero, k, i_decay, v_decay, scale):
    gen = torch.Generator().manual_seed(k + scale)
    b, t, m = 3, 6, 40
    thr = (torch.randint(1, 200, (m,), generator=gen).double() / 64).tolist()
    neuron = Neuron(threshold=thr, current_decay=i_decay / 4096, voltage_decay=v_decay / 4096,
                    max_burst=k, reset_mode="zero" if zero else "subtract", per_channel=True)
    z = torch.randint(-scale, 2 * scale, (b, m, t), generator=gen).float() * 2 / 64
    z.requires_grad_(True)
    n_ref = neuron(z)                                     # step by step, autograd
    g = torch.randn(n_ref.shape, generator=gen)
    (n_ref * g).sum().backward()
    gz_ref, gth_ref = z.grad.clone(), neuron.threshold_param.grad.clone()
    neuron.threshold_param.grad = None
    z2 = z.detach().clone().requires_grad_(True)
    n = QuantizedBurst.apply(z2.movedim(-1, 1).contiguous(), neuron.quantized_threshold(),
                             i_decay, v_decay, k, zero, 1.0, 1.0)
    (n * g.movedim(-1, 1)).sum().backward()
    assert torch.equal(n.movedim(1, -1), n_ref)
    assert n_ref.abs().sum() > 0 and (n_ref < k).any()
    torch.testing.assert_close(z2.grad, gz_ref, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(neuron.threshold_param.grad, gth_ref, rtol=1e-5, atol=1e-6)


def test_folded_float32_synapse_is_exact():
    path = os.path.join(ROOT, "netx_models", "fmnist_qblif_conv.net")
    net = load_network(path)
    gen = torch.Generator().manual_seed(0)
    x = torch.randint(0, 5, (6, 32, 28, 28), generator=gen).float()
    syn = net.blocks[2].synapse                           # 32 -> 64 channels, 3x3
    y32 = folded_synapse(syn, x, exact=True)
    y64 = folded_synapse(syn, x.double(), exact=False)
    assert y32.dtype == torch.float32 and torch.equal(y32.double(), y64)
    big = torch.full_like(x, 1e6)                        # beyond the bound: float64 inside
    assert torch.equal(folded_synapse(syn, big, exact=True).double(),
                       folded_synapse(syn, big.double(), exact=False))
