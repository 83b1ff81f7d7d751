"""The fused float-mode time loop (hand-written backward) and the no-grad quantized path equal
straightforward implementations: the step-by-step autograd loop of spec section 2 with the
ReLSG-ET surrogate, and the autograd (straight-through) quantized forward."""
import pytest
import torch
from lava.lib.dl.slayer.utils import quantize

from qblif.training.slayer import Neuron, ReLSGET

torch.set_num_threads(1)


def _reference_float(nrn, x):
    """Spec section 2, one step at a time, gradients by autograd (the pre-fusion code)."""
    theta = nrn.quantized_threshold()
    theta = theta.reshape(-1, 1, 1) if nrn.per_channel else theta.reshape(())
    keep_u = 1 - quantize(nrn.current_decay) / 4096
    keep_v = 1 - quantize(nrn.voltage_decay) / 4096
    u = torch.zeros(x.shape[:-1])
    v = torch.zeros(x.shape[:-1])
    ns, us, vs = [], [], []
    for t in range(x.shape[-1]):
        u = u * keep_u + x[..., t]
        v = v * keep_v + u
        n = ReLSGET.apply(v, theta, nrn.max_burst, nrn.tau_grad, nrn.scale_grad)
        v = v - n * theta if nrn.reset_mode == 'subtract' else v * (n == 0).to(v.dtype)
        ns.append(n), us.append(u), vs.append(v)
    return torch.stack(ns, -1), torch.stack(us, -1), torch.stack(vs, -1)


def _grads(nrn, x, outs, weights):
    params = [x, nrn.threshold_param, nrn.current_decay, nrn.voltage_decay]
    loss = sum((o.double() * w).sum() for o, w in zip(outs, weights))
    return torch.autograd.grad(loss, params, retain_graph=True)


@pytest.mark.parametrize('reset_mode', ['subtract', 'zero'])
@pytest.mark.parametrize('per_channel', [False, True])
@pytest.mark.parametrize('k', [1, 4])
def test_float_mode_matches_step_by_step_autograd(reset_mode, per_channel, k):
    torch.manual_seed(k + 2 * per_channel + 4 * (reset_mode == 'zero'))
    nrn = Neuron(threshold=[0.5, 0.8, 1.1] if per_channel else 0.7, per_channel=per_channel,
                 current_decay=0.25, voltage_decay=0.3, max_burst=k, reset_mode=reset_mode,
                 tau_grad=0.7, scale_grad=1.3, requires_grad=True, quantized=False)
    x = (torch.randn(4, 3, 5, 6, 10) * 1.5 + 0.5).requires_grad_(True)
    n, u, v = nrn.forward_states(x)
    rn, ru, rv = _reference_float(nrn, x)
    assert torch.equal(n, rn) and 0 < n.sum() and (n == 0).any()
    assert torch.equal(u, ru.double()) and torch.equal(v, rv.double())
    weights = [torch.randn(n.shape, dtype=torch.float64) for _ in range(3)]
    for used in (1, 3):              # loss on the counts only; on counts and states
        got = _grads(nrn, x, (n, u, v)[:used], weights)
        want = _grads(nrn, x, (rn, ru, rv)[:used], weights)
        for g, w in zip(got, want):
            torch.testing.assert_close(g, w, rtol=1e-5, atol=1e-5 * float(w.abs().max()))


@pytest.mark.parametrize('reset_mode', ['subtract', 'zero'])
@pytest.mark.parametrize('scale', [4.0, 2.0 ** 27])     # 2^27: u leaves int32 (the wrap)
def test_quantized_nograd_path_equals_autograd_path(reset_mode, scale):
    torch.manual_seed(1)
    nrn = Neuron(threshold=[0.5, 3.0, 100.0], per_channel=True, current_decay=0.01,
                 voltage_decay=0.0, max_burst=7, reset_mode=reset_mode)
    z = torch.round(torch.randn(2, 3, 4, 12, dtype=torch.float64) * scale) / 64
    n1, u1, v1 = nrn.forward_states(z)
    with torch.no_grad():
        n2, u2, v2 = nrn.forward_states(z)
        n3 = nrn(z)
    assert n1.sum() > 0
    assert torch.equal(n1, n2) and torch.equal(n1, n3)
    assert torch.equal(u1, u2) and torch.equal(v1, v2)
