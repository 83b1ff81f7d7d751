"""NetX export / load of SLAYER QB-LIF networks (docs/netx_format.md, spec section 5)."""
import os

import h5py
import numpy as np
import pytest
import torch

from lava.lib.dl import slayer
from qblif.training.slayer import block, export_network, load_network

torch.set_num_threads(1)

QB = dict(threshold=1.0, current_decay=0.25, voltage_decay=0.125, max_burst=4)
SECTION5 = {'type', 'vThMant', 'iDecay', 'vDecay', 'maxBurst', 'resetMode', 'refDelay',
            'messageBits'}


def _qblif_net():
    torch.manual_seed(0)
    return torch.nn.Sequential(
        block.Conv(dict(QB, per_channel=True, threshold=[0.5, 0.75, 1.0, 1.5]), 2, 4, 3,
                   padding=1, weight_scale=2),
        block.Pool(dict(QB, reset_mode='zero', max_burst=15), 2),
        block.Flatten(),
        block.Dense(dict(QB, max_burst=3), 4 * 4 * 4, 12, weight_scale=2),
        slayer.block.cuba.Dense(dict(threshold=1.25, current_decay=0.25, voltage_decay=0.03),
                                12, 10, weight_scale=2),
    )


def _input(shape, T=12, seed=0):
    return torch.tensor(np.random.default_rng(seed).integers(0, 16, size=(2, *shape, T)),
                        dtype=torch.float32)


def test_export_load_forward_identical(tmp_path):
    net = _qblif_net()
    x = _input((2, 8, 8))
    with torch.no_grad():
        y = net(x)
    assert y.sum() > 0
    path = tmp_path / 'net.h5'
    export_network(net, path, input_shape=(2, 8, 8), input_bits=4, timesteps=12,
                   dataset='digits')
    loaded = load_network(path)
    with torch.no_grad():
        y2 = loaded(x)
    assert torch.equal(y, y2)
    # every hidden layer too, and the thresholds / weights survive exactly
    h1, h2 = x, x
    for b1, b2 in zip(net, loaded.blocks):
        with torch.no_grad():
            h1, h2 = b1(h1), b2(h2)
        assert torch.equal(h1, h2)
    assert loaded.input_shape == (2, 8, 8) and loaded.input_bits == 4
    assert loaded.timesteps == 12 and loaded.dataset == 'digits'
    # re-export gives the same file content
    path2 = tmp_path / 'again.h5'
    loaded.export_hdf5(path2)
    with h5py.File(path, 'r') as f, h5py.File(path2, 'r') as g:
        items = []
        f.visititems(lambda k, v: items.append(k) if isinstance(v, h5py.Dataset) else None)
        for k in items:
            np.testing.assert_array_equal(f[k][()], g[k][()], err_msg=k)


def test_neuron_group_holds_section5_keys(tmp_path):
    net = _qblif_net()
    path = tmp_path / 'net.h5'
    export_network(net, path, input_shape=(2, 8, 8), input_bits=4, timesteps=12)
    with h5py.File(path, 'r') as f:
        conv, pool, dense = (f[f'layer/{i}/neuron'] for i in (0, 1, 3))
        for grp in (conv, pool, dense):
            assert set(grp.keys()) == SECTION5
            assert grp['type'][()] == b'QBLIF'
            assert grp['messageBits'][()] == int(grp['maxBurst'][()]).bit_length()
            assert grp['iDecay'][()] == 1024 and grp['vDecay'][()] == 512
            assert grp['refDelay'][()] == 1
        np.testing.assert_array_equal(conv['vThMant'][()], [32, 48, 64, 96])
        assert conv['vThMant'].dtype.kind == 'i'
        assert dense['vThMant'][()] == 64 and dense['vThMant'].shape == ()
        assert conv['resetMode'][()] == b'subtract' and pool['resetMode'][()] == b'zero'
        assert pool['maxBurst'][()] == 15 and pool['messageBits'][()] == 4
        assert f['layer/0/type'][0] == b'conv' and f['layer/0/weight'].shape == (4, 2, 3, 3)
        np.testing.assert_array_equal(f['layer/0/shape'][()], [4, 8, 8])
        w = f['layer/3/weight'][()]
        assert w.shape == (12, 64) and np.all(w % 2 == 0) and w.min() >= -256 and w.max() <= 254
        assert f['layer/4/neuron/type'][()] == b'CUBA'
        meta = f['qblif']
        np.testing.assert_array_equal(meta['inputShape'][()], [2, 8, 8])
        assert meta['inputBits'][()] == 4 and meta['timesteps'][()] == 12
        assert meta['encoding'][()] == b'direct' and 'dataset' not in meta


def test_cuba_only_network_loads_in_stock_netx(tmp_path):
    from lava.lib.dl import netx
    torch.manual_seed(1)
    p = dict(threshold=1.25, current_decay=0.25, voltage_decay=0.03)
    net = torch.nn.Sequential(
        slayer.block.cuba.Conv(p, 2, 4, 3, padding=1, weight_scale=2),
        slayer.block.cuba.Flatten(),
        slayer.block.cuba.Dense(p, 4 * 6 * 6, 16, weight_scale=2),
        slayer.block.cuba.Dense(p, 16, 10, weight_scale=2),
    )
    x = _input((2, 6, 6))
    with torch.no_grad():
        y = net(x)
    path = tmp_path / 'cuba.h5'
    export_network(net, path, input_shape=(2, 6, 6), input_bits=4, timesteps=12)
    lava_net = netx.hdf5.Network(net_config=str(path), input_shape=(6, 6, 2))
    assert len(lava_net) == 3
    assert lava_net.inp.shape == (6, 6, 2) and lava_net.out.shape == (10,)
    with torch.no_grad():
        assert torch.equal(load_network(path)(x), y)   # our loader rebuilds CUBA blocks too


def test_unwritable_path_is_a_clear_error_and_keeps_existing_file(tmp_path):
    net = _qblif_net()
    kw = dict(input_shape=(2, 8, 8), input_bits=4, timesteps=12)
    missing = tmp_path / 'no_such_dir' / 'net.h5'
    with pytest.raises(OSError, match='no_such_dir'):
        export_network(net, missing, **kw)
    with pytest.raises(OSError, match='directory'):
        export_network(net, tmp_path, **kw)

    path = tmp_path / 'net.h5'
    path.write_bytes(b'precious')

    class Broken(torch.nn.Module):
        def forward(self, x):
            return x

        def export_hdf5(self, handle):
            raise RuntimeError('boom')

    with pytest.raises(RuntimeError, match='boom'):
        export_network(list(net) + [Broken()], path, **kw)
    with pytest.raises(ValueError, match='export_hdf5'):
        export_network(list(net) + [torch.nn.ReLU()], path, **kw)
    with pytest.raises(ValueError, match='input_bits'):
        export_network(net, path, input_shape=(2, 8, 8), input_bits=9, timesteps=12)
    assert path.read_bytes() == b'precious'
    assert sorted(os.listdir(tmp_path)) == ['net.h5']          # no temporary left behind

    if os.geteuid() != 0:                                      # root ignores permissions
        ro = tmp_path / 'ro'
        ro.mkdir()
        (ro / 'net.h5').write_bytes(b'keep')
        ro.chmod(0o500)
        try:
            with pytest.raises(OSError, match='cannot write'):
                export_network(net, ro / 'net.h5', **kw)
            assert (ro / 'net.h5').read_bytes() == b'keep'
        finally:
            ro.chmod(0o700)


def test_mkstemp_failure_is_wrapped(tmp_path, monkeypatch):
    import tempfile

    def deny(*args, **kwargs):
        raise PermissionError(13, 'Permission denied')

    path = tmp_path / 'net.h5'
    path.write_bytes(b'keep')
    monkeypatch.setattr(tempfile, 'mkstemp', deny)
    with pytest.raises(OSError, match='cannot write network to .*Permission denied'):
        export_network(_qblif_net(), path, input_shape=(2, 8, 8), input_bits=4, timesteps=12)
    assert path.read_bytes() == b'keep'


def test_input_and_average_blocks_round_trip(tmp_path):
    torch.manual_seed(2)
    net = torch.nn.Sequential(
        block.Input(dict(QB, max_burst=2), weight=1.0),
        block.Dense(dict(QB, reset_mode='zero'), 10, 12, weight_scale=2),
        block.Average(num_outputs=3),
    )
    x = _input((10,)) / 8            # graded input within quantize_8bit's range
    with torch.no_grad():
        y = net(x)
    assert y.sum() > 0
    path = tmp_path / 'net.h5'
    export_network(net, path, input_shape=(10,), input_bits=4, timesteps=12)
    with torch.no_grad():
        assert torch.equal(load_network(path)(x), y)
    with h5py.File(path, 'r') as f:
        assert set(f['layer/0/neuron'].keys()) == SECTION5
        assert f['layer/0/weight'][()] == 64
        assert f['layer/2/type'][0] == b'average'


def test_lazy_per_channel_pool_loads_state_dict():
    p = dict(QB, per_channel=True)
    a = block.Pool(p, 2)
    with torch.no_grad():
        a(_input((3, 4, 4)))
    assert a.neuron.threshold_param.shape == (3,)
    a.neuron.threshold_param.data = torch.tensor([0.5, 1.0, 2.0])
    b = block.Pool(p, 2)
    b.load_state_dict(a.state_dict())
    assert torch.equal(b.neuron.threshold_param, a.neuron.threshold_param)


def test_persistent_state_continues_across_calls():
    torch.manual_seed(4)
    kw = dict(QB, persistent_state=True, max_burst=3)
    one = block.Dense(kw, 10, 6, weight_scale=2)
    two = block.Dense(kw, 10, 6, weight_scale=2)
    two.load_state_dict(one.state_dict())
    x = _input((10,), T=20, seed=5)
    with torch.no_grad():
        whole = one(x)
        halves = torch.cat([two(x[..., :9]), two(x[..., 9:])], -1)
    assert whole.sum() > 0
    assert torch.equal(whole, halves)
