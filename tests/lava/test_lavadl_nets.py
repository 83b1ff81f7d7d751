"""Networks built from lava-dl's own SLAYER blocks (``tests/lavadl_nets.py``): lava-dl
exports each, and stock lava-dl NetX (``tests/stock_netx.py``) loads and runs it, or not.

Each test pins one row of the table "Stock NetX behaviour per feature" in
``docs/training_features.md``: where stock runs a feature exactly it equals lava-dl's SLAYER
forward on every layer and step; where it runs it differently, the test shows how; where
it refuses, the error. The last tests reproduce lava-dl's shipped ground truths with stock
NetX (tinynet, ntidigits, pilotnet_sdnn, pilotnet_lif).
"""
import numpy as np
import pytest

pytest.importorskip("torch")

import lavadl_nets as nets  # noqa: E402
import stock_netx  # noqa: E402

T = 12           # steps of every stock run (inputs: 8 steps, then 4 of silence)
T_IN = 8
STATE = 1 << 12  # Lava's fixed-point u, v = lava-dl's float state x 2^12

LAYER_TYPES = {
    'dense': ['input', 'dense', 'dense'],
    'graded_input': ['input', 'dense', 'dense'],
    'input_neuron': ['input', 'dense', 'dense'],
    'input_transform': ['input', 'dense', 'dense'],
    'input_neuron_conv': ['input', 'conv', 'flatten', 'dense'],
    'conv': ['input', 'conv', 'conv', 'flatten', 'dense'],
    'pool': ['input', 'conv', 'pool', 'flatten', 'dense'],
    'recurrent': ['input', 'dense_rec', 'dense'],
    'recurrent_delay': ['input', 'dense_rec', 'dense'],
    'dense_delay': ['input', 'dense', 'dense', 'dense'],
    'conv_delay': ['input', 'conv', 'flatten', 'dense'],
    'graded': ['input', 'dense', 'dense'],
    'affine': ['input', 'dense', 'dense'],
    'dense_no_neuron': ['input', 'dense', 'dense'],
    'average': ['input', 'dense', 'dense', 'average'],
    'rf': ['input', 'dense', 'dense'],
    'rf_iz': ['input', 'dense', 'dense'],
    'alif': ['input', 'dense', 'dense'],
    'sdnn': ['input', 'dense', 'dense'],
}


def _run(tmp_path, feature, seed=0, record_uv=False):
    """(info, stock result, lava-dl SLAYER outputs) of ``feature``'s network."""
    info = nets.make_net(feature, seed, tmp_path / f"{feature}_{seed}.net")
    x = nets.make_stream(info, seed, T, T_IN)
    out = stock_netx.run_stock(info['path'], x, T,
                               input_mode=nets.STOCK_INPUT_MODE[info['input_kind']],
                               input_message_bits=nets.STOCK_INPUT_BITS[info['input_kind']],
                               record_uv=record_uv)
    return info, out, nets.forward(info, x, T)


def test_every_feature_has_a_row():
    assert set(LAYER_TYPES) == set(nets.FEATURES)


@pytest.mark.parametrize("feature", nets.FEATURES)
def test_lavadl_exports_feature(tmp_path, feature):
    """lava-dl's export_hdf5 writes every feature (with the fixture's workarounds); weights
    are 8-bit Loihi synapses (even integers in [-256, 254]), delays integers in 0..62, and
    lava-dl's forward of the network is not silent."""
    for seed in (0, 1):
        info = nets.make_net(feature, seed, tmp_path / f"{feature}_{seed}.net")
        assert info['layer_types'] == LAYER_TYPES[feature]
        assert nets.check_file(info['path']) == LAYER_TYPES[feature]
        x = nets.make_input(info, seed, T_IN)
        outs = nets.forward(info, x, T)
        assert len(outs) == len(LAYER_TYPES[feature])
        assert any(np.abs(o).sum() > 0 for o in outs[1:]), "silent network"


def test_make_net_rejects_unknown_feature(tmp_path):
    with pytest.raises(ValueError, match="unknown feature 'concat'"):
        nets.make_net('concat', 0, tmp_path / "x.net")


def test_seeds_give_different_weights(tmp_path):
    import h5py
    w = []
    for seed in (0, 1):
        info = nets.make_net('dense', seed, tmp_path / f"d{seed}.net")
        with h5py.File(info['path'], 'r') as f:
            w.append(f['layer/1/weight'][()])
    assert not np.array_equal(*w)


# ------------------------------------------------------------- stock runs it exactly
#: stock NetX's spikes equal lava-dl's SLAYER forward on every layer and step; the lag is
#: how many steps stock is ahead: lava-dl's Input block with a neuron delays by one step
#: (delay_shift) where stock's bias-driven input layer does not
EXACT = {'dense': 0, 'conv': 0, 'recurrent': 0, 'dense_delay': 0, 'rf': 0, 'rf_iz': 0,
         'graded_input': 0, 'input_neuron': 1, 'input_neuron_conv': 1}


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("feature", sorted(EXACT))
def test_stock_runs_exactly(tmp_path, feature, seed):
    lag = EXACT[feature]
    info, out, outs = _run(tmp_path, feature, seed)
    assert sorted(out) == [i for i, t in enumerate(info['layer_types'])
                           if t != 'flatten' and (t != 'input' or info['input_kind'] == 'bias')]
    total = 0
    for i in out:
        np.testing.assert_array_equal(out[i][:T - lag], outs[i][lag:], err_msg=f"layer {i}")
        total += out[i].sum()
    assert total > 0, "silent network: no evidence"


# ------------------------------------------------------------- stock runs it differently
def test_stock_ignores_conv_axonal_delays(tmp_path):
    """Stock NetX builds conv layers without their ``delay`` dataset: the conv layer's
    spikes are lava-dl's with the delays set to 0, not lava-dl's with the delays."""
    info, out, outs = _run(tmp_path, 'conv_delay')
    blk = info['blocks'][1]
    assert blk.delay.delay.detach().max() > 0
    assert not np.array_equal(out[1], outs[1])
    blk.delay.delay.data.zero_()
    no_delay = nets.forward(info, nets.make_stream(info, 0, T, T_IN), T)
    np.testing.assert_array_equal(out[1], no_delay[1])
    assert out[1].sum() > 0


def test_stock_sends_binary_spikes_for_graded_cuba(tmp_path):
    """A ``gradedSpike`` CUBA layer: stock sends 1 where lava-dl sends the graded payload
    (same steps and neurons); the next layer then differs."""
    info, out, outs = _run(tmp_path, 'graded')
    assert set(np.unique(out[1])) == {0.0, 1.0}
    assert len(np.unique(outs[1])) > 2                         # lava-dl: graded values
    np.testing.assert_array_equal(out[1], (outs[1] != 0).astype(out[1].dtype))
    assert not np.array_equal(out[2], outs[2])


def test_stock_affine_readout_is_its_voltage(tmp_path):
    """``cuba.Affine`` (vThMant 2^18 - 1): stock's LIF never fires; its ``v`` is lava-dl's
    Affine output (the CUBA voltage) x 2^12, one step later (stock's synapse step, which
    lava-dl's Affine block has no ``delay_shift`` for)."""
    info, out, outs = _run(tmp_path, 'affine', record_uv=True)
    assert out[2].sum() == 0
    np.testing.assert_array_equal(out.v[2][1:], outs[2][:-1] * STATE)
    assert np.abs(outs[2]).sum() > 0


def test_stock_dense_without_neuron_integrates(tmp_path):
    """A dense layer without a neuron group (``cuba.Affine(dynamics=False)``, mnist.net's
    last layer): lava-dl outputs the synaptic sum of each step; stock gives it a default
    CUBA neuron (iDecay 0, vDecay 4096, vThMant 1 << 17) whose u = v is the running sum of
    those synaptic sums (x 2^12), one step later, and which sends no spikes here."""
    info, out, outs = _run(tmp_path, 'dense_no_neuron', record_uv=True)
    assert out[2].sum() == 0
    running = np.cumsum(outs[2], axis=0) * STATE
    np.testing.assert_array_equal(out.u[2][1:], running[:-1])
    np.testing.assert_array_equal(out.v[2], out.u[2])
    assert not np.array_equal(running[:-1], outs[2][:-1] * STATE)


def test_stock_sdnn_approximates_lavadl(tmp_path):
    """SDNN (sigma_delta Input, Dense, Output): stock's fixed-point messages (x 2^12; the
    Sigma readout x 2^18) are close to lava-dl's float forward, not equal (relative L1
    error about 1 % on every layer; stock one step later per synapse)."""
    info, out, outs = _run(tmp_path, 'sdnn')
    for i, scale, lag in ((0, STATE, 0), (1, STATE, 1), (2, STATE << 6, 2)):
        a, b = out[i][lag:] / scale, outs[i][:T - lag]
        rel = np.abs(a - b).sum() / np.abs(b).sum()
        assert 0 < rel < 0.05, (i, rel)


def test_stock_ignores_the_input_transform(tmp_path):
    """An input layer with ``weight``/``bias`` (lava-dl ``Input(params, weight, bias)``):
    stock stores the transform but never applies it; the bias frame equals lava-dl only when
    the caller applies it (``bias_mant = x * weight / 64 + bias``)."""
    import h5py
    info, out, outs = _run(tmp_path, 'input_transform')
    with h5py.File(info['path'], 'r') as f:
        w, b = int(f['layer/0/weight'][()].item()), int(f['layer/0/bias'][()].item())
    assert (w, b) == (96, 16)
    assert not np.array_equal(out[0][:T - 1], outs[0][1:])
    x = nets.make_input(info, 0, T_IN)
    applied = stock_netx.run_stock(info['path'], x * w // 64 + b, T, input_mode='bias')
    for i in applied:
        np.testing.assert_array_equal(applied[i][:T - 1], outs[i][1:], err_msg=f"layer {i}")
    assert applied[2].sum() > 0


# ------------------------------------------------------------- stock refuses it
@pytest.mark.parametrize("feature, error, match", [
    ('pool', NotImplementedError, 'pool is not implemented'),
    ('average', NotImplementedError, 'average is not implemented'),
    ('alif', AttributeError, "'NoneType' object has no attribute 'pop'"),
    ('recurrent_delay', ValueError, "expects same shape than the weight matrix"),
])
def test_stock_refuses(tmp_path, feature, error, match):
    info = nets.make_net(feature, 0, tmp_path / f"{feature}.net")
    x = nets.make_input(info, 0, T)
    with pytest.raises(error, match=match):
        stock_netx.run_stock(info['path'], x, T)
    # the file is closed again (stock's NetDict leaves it open): rewriting works
    nets.make_net(feature, 1, info['path'])


# ------------------------------------------------------------- lava-dl's ground truths
def test_ground_truth_tinynet():
    """tiny.net (input layer with a LOIHI neuron driven by bias, two convs): stock with a
    reset every 17 steps reproduces the shipped output spikes exactly."""
    g = stock_netx.load_gt('tinynet')
    out = stock_netx.run_stock(g['path'], g['bias'].transpose(2, 1, 0), 20, input_mode='bias',
                               reset_interval=17, reset_offset=0)
    last = np.moveaxis(out[out.layers[-1]], 0, -1).transpose(2, 1, 0, 3)   # (W, H, C, T)
    assert g['output'].sum() > 0
    np.testing.assert_array_equal(last[..., 2:17], g['output'])


def test_ground_truth_ntidigits_first_steps():
    """ntidigits.net (dense layers with axonal delays; its average layer skipped, as
    lava-dl's test does): stock's layer-4 spikes equal the shipped output over the first
    80 steps, stock one step earlier (lava-dl's own test compares a single column)."""
    g = stock_netx.load_gt('ntidigits')
    n = 80
    out = stock_netx.run_stock(g['path'], g['input'][:, :n].T, n, num_layers=g['num_layers'])
    gt = g['output'][:, :n].T                                   # (n, 242)
    assert gt.sum() > 0
    np.testing.assert_array_equal(out[4][:-1], gt[1:])


def test_ground_truth_pilotnet_sdnn():
    """pilotnet_sdnn (SDNN input layer fed into its Delta's a_in, 4 convs, 4 denses, Sigma
    output): stock reproduces the shipped output of the first 9 steps exactly."""
    g = stock_netx.load_gt('pilotnet_sdnn')
    out = stock_netx.run_stock(g['path'], g['input'].transpose(3, 2, 1, 0), 9,
                               input_mode='a_in')
    last = out[out.layers[-1]].T                               # (1, 9)
    assert np.abs(g['output']).sum() > 0
    np.testing.assert_array_equal(last, g['output'])
