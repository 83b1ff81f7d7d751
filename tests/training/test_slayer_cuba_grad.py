"""QB-LIF with K=1 / zero reset equals lava-dl CUBA; surrogate gradient and threshold learning."""
import numpy as np
import pytest
import torch

from lava.lib.dl import slayer
from qblif.training.slayer import ReLSGET, Neuron, block, set_quantized

torch.set_num_threads(1)


def _copy_weights(src, dst):
    dst.synapse.weight.data = src.synapse.weight.data.clone()


@pytest.mark.parametrize('kind', ['dense', 'conv'])
def test_k1_zero_reset_equals_lava_dl_cuba(kind):
    rng = np.random.default_rng(3)
    torch.manual_seed(3)
    cuba_p = dict(threshold=1.25, current_decay=0.25, voltage_decay=0.5)
    qb_p = dict(cuba_p, max_burst=1, reset_mode='zero')
    T = 32
    if kind == 'dense':
        cb = slayer.block.cuba.Dense(cuba_p, 16, 8, weight_scale=2)
        qb = block.Dense(qb_p, 16, 8)
        x = rng.integers(0, 4, size=(3, 16, T))
    else:
        cb = slayer.block.cuba.Conv(cuba_p, 2, 4, 3, padding=1, weight_scale=2)
        qb = block.Conv(qb_p, 2, 4, 3, padding=1)
        x = rng.integers(0, 4, size=(3, 2, 6, 6, T))
    _copy_weights(cb, qb)
    x = torch.tensor(x, dtype=torch.float32)
    y_c, y_q = cb(x), qb(x)
    assert y_c.sum() > 10 and (y_c == 0).sum() > 10          # a non-trivial spike train
    assert torch.equal(y_c, y_q)
    # same exported neuron parameters (the chip sees the same du, dv, vth)
    for key in ('iDecay', 'vDecay', 'vThMant', 'refDelay'):
        assert cb.neuron.device_params[key] == qb.neuron.device_params[key]
    # and the quantized weights are identical
    assert torch.equal(cb.synapse.pre_hook_fx(cb.synapse.weight, descale=True),
                       qb.synapse.pre_hook_fx(qb.synapse.weight, descale=True))


def _documented_grads(v, theta, k, width, scale):
    """Independent numpy transcription of the ReLSG-ET docstring formula."""
    x = v / theta
    g = np.where(x < 0, np.exp(x / width), np.where(x > k, np.exp(-(x - k) / width), 1.0))
    g = scale * g
    return g / theta, -g * x / theta


@pytest.mark.parametrize('k', [1, 4])
def test_surrogate_matches_documented_formula(k):
    theta = 0.75
    v = torch.linspace(-3, 3 * k + 3, 401, dtype=torch.float64, requires_grad=True)
    th = torch.tensor(theta, dtype=torch.float64, requires_grad=True)
    n = ReLSGET.apply(v, th, k, 0.5, 2.0)
    # forward: the strict-comparator staircase
    expect = np.where(v.detach().numpy() <= theta, 0,
                      np.minimum(k, np.ceil(v.detach().numpy() / theta) - 1))
    np.testing.assert_array_equal(n.detach().numpy(), expect)
    go = torch.rand(v.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    n.backward(go)
    gv, gth = _documented_grads(v.detach().numpy(), theta, k, 0.5, 2.0)
    np.testing.assert_allclose(v.grad.numpy(), gv * go.numpy(), rtol=1e-12)
    np.testing.assert_allclose(th.grad.item(), float((gth * go.numpy()).sum()), rtol=1e-12)
    # inside [0, K theta] the slope of the staircase is 1/theta (times the scale)
    inside = (v.detach() >= 0) & (v.detach() <= k * theta)
    np.testing.assert_allclose((v.grad / go)[inside].numpy(), 2.0 / theta)


def _dense(threshold, k=4, quantized=True):
    torch.manual_seed(0)
    return block.Dense(dict(threshold=threshold, current_decay=0.5, voltage_decay=0.25,
                            max_burst=k, per_channel=True, quantized=quantized), 12, 5,
                       weight_scale=2)


@pytest.mark.parametrize('quantized', [True, False])
def test_threshold_gets_gradient(quantized):
    blk = _dense(1.0, quantized=quantized)
    x = torch.tensor(np.random.default_rng(1).integers(0, 4, size=(4, 12, 16)),
                     dtype=torch.float32)
    y = blk(x)
    assert y.sum() > 0
    (y.mean() + (y ** 2).mean()).backward()
    g = blk.neuron.threshold_param.grad
    assert g is not None and g.shape == (5,) and torch.all(torch.isfinite(g))
    assert torch.count_nonzero(g) > 0
    assert blk.synapse.weight.grad is not None and blk.synapse.weight.grad.abs().sum() > 0
    # one SGD step on the mean count along the threshold gradient lowers the count
    with torch.no_grad():
        blk.neuron.threshold_param -= 0.5 * torch.sign(g)
    assert blk(x).mean() < y.mean()


@pytest.mark.parametrize('quantized', [True, False])
def test_raising_threshold_lowers_spike_count(quantized):
    x = torch.tensor(np.random.default_rng(2).integers(0, 4, size=(4, 12, 16)),
                     dtype=torch.float32)
    means = []
    for thr in (0.25, 0.5, 1.0, 2.0, 4.0):
        with torch.no_grad():
            means.append(_dense(thr, quantized=quantized)(x).mean().item())
    assert all(a >= b for a, b in zip(means, means[1:])), means
    assert means[0] > 2 * means[-1], means


def test_set_quantized_switches_modes():
    net = torch.nn.Sequential(_dense(1.0), block.Dense(dict(threshold=1.0, current_decay=0.5,
                                                            voltage_decay=0.25), 5, 3))
    set_quantized(net, False)
    assert not any(m.quantized for m in net.modules() if isinstance(m, Neuron))
    set_quantized(net, True)
    assert all(m.quantized for m in net.modules() if isinstance(m, Neuron))
