"""The quantized SLAYER forward of QB-LIF blocks equals qblif.core.reference (spec section 1)."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from qblif.core import reference as ref
from qblif.training.slayer import block

torch.set_num_threads(1)


def _params(rng, k, reset_mode, per_channel, channels):
    i_decay = int(rng.integers(1, 4097))
    v_decay = int(rng.integers(0, 4096))
    vth = rng.integers(100, 3000, size=channels) if per_channel else int(rng.integers(100, 3000))
    thr = (np.asarray(vth) / 64).tolist()
    return (dict(threshold=thr, current_decay=i_decay / 4096, voltage_decay=v_decay / 4096,
                 max_burst=k, reset_mode=reset_mode, per_channel=per_channel),
            dict(du=i_decay - 1, dv=v_decay, max_burst=k, reset_mode=reset_mode), np.asarray(vth))


def _even_weights(rng, shape, positive_rows):
    w = 2 * rng.integers(-128, 128, size=shape)
    w[:positive_rows] = 2 * rng.integers(40, 128, size=(positive_rows, *shape[1:]))
    return w


def _check_against_reference(blk, x, a, kw, vth, channel_axis_shape, regime):
    """``a``: (N, *shape, T) integer synaptic input in weight units."""
    y = blk(torch.tensor(x, dtype=torch.float32))
    a_seq = np.moveaxis(a, -1, 0)                         # (T, N, *shape)
    vth_b = vth.reshape(channel_axis_shape) if vth.ndim else int(vth)
    n_ref, u_ref, v_ref = ref.simulate(a_seq, vth=vth_b, record=True, **kw)
    y_ref = np.moveaxis(n_ref, 0, -1)
    out = y.detach().numpy()
    assert np.all(out[..., 0] == 0)                       # one-step synaptic delay
    np.testing.assert_array_equal(out[..., 1:], y_ref[..., :-1])
    # states of the neuron itself, step by step (SLAYER state x 4096 = chip state)
    z = torch.tensor(a / 64.0)
    with torch.no_grad():
        n, u, v = blk.neuron.forward_states(z)
    np.testing.assert_array_equal(n.numpy(), y_ref)
    np.testing.assert_array_equal((u * 4096).numpy(), np.moveaxis(u_ref, 0, -1))
    np.testing.assert_array_equal((v * 4096).numpy(), np.moveaxis(v_ref, 0, -1))
    k = kw['max_burst']
    if regime == 'saturating':   # the data reached the 24-bit wrap of u and the clip of v
        u_prev = np.concatenate([np.zeros_like(u_ref[:1]), u_ref[:-1]]).astype(np.int64)
        v_prev = np.concatenate([np.zeros_like(v_ref[:1]), v_ref[:-1]]).astype(np.int64)
        unwrapped = ref.rtz_shift(u_prev * (4096 - (kw['du'] + 1))) + a_seq * 64
        assert np.any(np.abs(unwrapped) > ref.MAX_UV), "test data does not reach the u wrap"
        unclipped = ref.rtz_shift(v_prev * (4096 - kw['dv'])) + u_ref
        assert np.any(unclipped > ref.V_MAX) or np.any(unclipped < ref.V_MIN), "no v clip"
        assert np.any(y_ref == k), "no saturated burst"
    else:
        assert np.any(y_ref > 0) and np.any(y_ref == 0)
        if k > 1:
            assert np.any((y_ref > 0) & (y_ref < k)), "no partial burst"


CASES = [(k, r, g) for k in (1, 3, 4, 15) for r in ('subtract', 'zero')
         for g in ('saturating', 'moderate')]


def _regime(np_, kw, rng, regime, x_shape, T):
    if regime == 'saturating':   # strong integration: tiny decays, inputs up to 255
        i_decay, v_decay, x_max = int(rng.integers(1, 64)), int(rng.integers(0, 32)), 256
    else:
        i_decay, v_decay, x_max = int(rng.integers(1024, 3072)), int(rng.integers(512, 2048)), 4
    np_['current_decay'], kw['du'] = i_decay / 4096, i_decay - 1
    np_['voltage_decay'], kw['dv'] = v_decay / 4096, v_decay
    return rng.integers(0, x_max, size=(3, *x_shape, T))


@pytest.mark.parametrize('k,reset_mode,regime', CASES)
def test_dense_matches_reference(k, reset_mode, regime):
    rng = np.random.default_rng(100 * k + len(reset_mode) + len(regime))
    n_in, n_out, T = 16, 6, 24
    np_, kw, vth = _params(rng, k, reset_mode, per_channel=False, channels=n_out)
    x = _regime(np_, kw, rng, regime, (n_in,), T)
    blk = block.Dense(np_, n_in, n_out)
    w = _even_weights(rng, (n_out, n_in), positive_rows=3)
    blk.synapse.weight.data = torch.tensor(w / 64.0, dtype=torch.float32).reshape(
        blk.synapse.weight.shape)
    a = np.einsum('oi,nit->not', w, x)
    _check_against_reference(blk, x, a, kw, vth, (), regime)


@pytest.mark.parametrize('k,reset_mode,regime', CASES)
def test_conv_matches_reference_per_channel(k, reset_mode, regime):
    rng = np.random.default_rng(7 + 100 * k + len(reset_mode) + len(regime))
    c_in, c_out, hw, T = 2, 3, 5, 20
    np_, kw, vth = _params(rng, k, reset_mode, per_channel=True, channels=c_out)
    x = _regime(np_, kw, rng, regime, (c_in, hw, hw), T)
    blk = block.Conv(np_, c_in, c_out, 3, padding=1)
    w = _even_weights(rng, (c_out, c_in, 3, 3), positive_rows=2)
    blk.synapse.weight.data = torch.tensor(w / 64.0, dtype=torch.float32).reshape(
        blk.synapse.weight.shape)
    a = F.conv3d(torch.tensor(x, dtype=torch.float64),
                 torch.tensor(w, dtype=torch.float64)[..., None], padding=(1, 1, 0))
    a = np.rint(a.numpy()).astype(np.int64)
    _check_against_reference(blk, x, a, kw, vth, (c_out, 1, 1), regime)


def test_threshold_mantissa_and_weights_are_quantized():
    blk = block.Dense(dict(threshold=1.013, current_decay=0.1, voltage_decay=0.1,
                           max_burst=4), 3, 2)
    assert blk.neuron.v_th_mant == round(1.013 * 64)
    blk.synapse.weight.data[:] = 0.3
    q = blk.synapse.pre_hook_fx(blk.synapse.weight, descale=True)
    assert torch.all(q == 20)          # 0.3 * 64 = 19.2 -> nearest even integer 20
    blk.neuron.threshold_param.data[:] = 0.001
    blk.neuron.clamp()
    assert blk.neuron.v_th_mant == 1   # clamped to >= 1/64
