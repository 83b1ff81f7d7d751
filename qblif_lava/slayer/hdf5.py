"""Whole-network NetX export and load (``docs/netx_format.md``).

:func:`export_network` writes ``/layer/<i>`` with each block's own lava-dl ``export_hdf5``
(QB-LIF blocks add the spec section 5 neuron group) and the ``/qblif`` metadata group,
atomically (a temporary file in the same directory, then ``os.replace``).
:func:`load_network` rebuilds a SLAYER :class:`Network` (QB-LIF blocks, or lava-dl
``slayer.block.cuba`` blocks for CUBA neuron groups) whose forward equals the exported one.
"""
from __future__ import annotations

import os
import tempfile

import h5py
import numpy as np
import torch

from lava.lib.dl.slayer.block import cuba

from qblif_lava.params import check_int_range, check_shape
from qblif_lava.slayer import block as qblock
from qblif_lava.slayer.neuron import S_SCALE, W_SCALE

__all__ = ['Network', 'export_network', 'load_network']


class Network(torch.nn.Module):
    """Sequential SLAYER network: ``blocks`` applied in order to ``(N, *input_shape, T)``.

    Attributes ``input_shape``, ``input_bits``, ``timesteps``, ``dataset`` hold the ``/qblif``
    metadata (None when absent).
    """

    def __init__(self, blocks, input_shape=None, input_bits=None, timesteps=None, dataset=None):
        super().__init__()
        self.blocks = torch.nn.ModuleList(blocks)
        self.input_shape = None if input_shape is None else tuple(int(s) for s in input_shape)
        self.input_bits = input_bits
        self.timesteps = timesteps
        self.dataset = dataset

    def forward(self, x):
        for b in self.blocks:
            x = b(x)
        return x

    @property
    def latency(self) -> int:
        """Steps of delay from input to output (see :func:`latency`)."""
        return latency(self.blocks)

    def export_hdf5(self, path, **kwargs):
        """:func:`export_network` of ``self.blocks`` with this network's metadata as defaults."""
        meta = dict(input_shape=self.input_shape, input_bits=self.input_bits,
                    timesteps=self.timesteps, dataset=self.dataset)
        meta.update(kwargs)
        export_network(self.blocks, path, **meta)


def latency(blocks) -> int:
    """Steps of delay from input to output: one per block with lava-dl's ``delay_shift``
    (Dense/Conv/Pool/Recurrent; Lava's Dense/Conv add the same step), plus the largest
    integer axonal delay of each block with ``delay=True``. SLAYER needs ``T + latency``
    steps for the output to answer all ``T`` input steps."""
    total = 0
    for b in blocks:
        total += 1 if getattr(b, "delay_shift", False) else 0
        d = getattr(b, "delay", None)
        if isinstance(d, torch.nn.Module) and getattr(d, "init", False):
            total += int(torch.floor(d.delay.detach()).max().item())
    return total


def _as_blocks(blocks):
    if isinstance(blocks, torch.nn.Module):
        inner = getattr(blocks, 'blocks', None)
        return list(inner) if inner is not None else list(blocks.children())
    return list(blocks)


def _needs_shape(b):
    if isinstance(b, qblock.Flatten) or type(b).__name__ == 'Flatten':
        return getattr(b, 'shape', None) is None
    neuron = getattr(b, 'neuron', None)
    return neuron is not None and neuron.shape is None


def _init_shapes(blocks, input_shape):
    """lava-dl sets layer shapes on the first forward: run one zero step if any is missing,
    restoring persistent states, delay buffers and train/eval flags."""
    if not any(_needs_shape(b) for b in blocks):
        return
    saved = []
    for b in blocks:
        n = getattr(b, 'neuron', None)
        saved.append((b.training, getattr(b, 'delay_buffer', None),
                      None if n is None else (n.current_state, n.voltage_state)))
    try:
        param = next((p for b in blocks for p in b.parameters()), None)
        x = torch.zeros((1, *input_shape, 1),
                        device=None if param is None else param.device)
        with torch.no_grad():
            for b in blocks:
                b.eval()
                x = b(x)
                x = x[0] if isinstance(x, tuple) else x
    finally:
        for b, (training, buf, states) in zip(blocks, saved):
            b.train(training)
            if hasattr(b, 'delay_buffer'):
                b.delay_buffer = buf
            if states is not None:
                b.neuron.current_state, b.neuron.voltage_state = states


def _bytes(s):
    return np.bytes_(str(s).encode('ascii'))


def export_network(blocks, path, *, input_shape, input_bits, timesteps, dataset=None):
    """Write ``blocks`` (a list, ``nn.Sequential``/``ModuleList``, or a module with ``.blocks``)
    to the NetX HDF5 file ``path``.

    ``input_shape``: one input frame, lava-dl shape convention (``(F,)`` or ``(C, H, W)``);
    ``input_bits``: bits of the direct graded input (1..8); ``timesteps``: T (>= 1);
    ``dataset``: optional name. Raises ``ValueError`` for bad arguments or a block without
    ``export_hdf5``, ``OSError`` (with the path) when ``path`` cannot be written; an existing
    file at ``path`` is replaced only after the new file is complete.
    """
    blocks = _as_blocks(blocks)
    if not blocks:
        raise ValueError("export_network: no blocks to export")
    for i, b in enumerate(blocks):
        if not callable(getattr(b, 'export_hdf5', None)):
            raise ValueError(f"export_network: block {i} ({type(b).__name__}) has no export_hdf5")
    input_shape = check_shape(input_shape)
    input_bits = int(check_int_range('input_bits', input_bits, 1, 8))
    timesteps = int(check_int_range('timesteps', timesteps, 1, 2 ** 31 - 1))

    path = os.fspath(path)
    target = os.path.abspath(path)
    directory = os.path.dirname(target)
    if os.path.isdir(target):
        raise IsADirectoryError(f"cannot write network to {path!r}: it is a directory")
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"cannot write network to {path!r}: directory {directory!r} "
                                f"does not exist")
    _init_shapes(blocks, input_shape)
    try:
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=f'.{os.path.basename(target)}.',
                                   suffix='.tmp')
    except OSError as exc:
        raise OSError(exc.errno, f"cannot write network to {path!r}: {exc.strerror}") from exc
    os.close(fd)
    try:
        with h5py.File(tmp, 'w') as f:
            layers = f.create_group('layer')
            for i, b in enumerate(blocks):
                b.export_hdf5(layers.create_group(f'{i}'))
            meta = f.create_group('qblif')
            meta.create_dataset('inputShape', data=np.array(input_shape, dtype=np.int64))
            meta.create_dataset('inputBits', data=input_bits)
            meta.create_dataset('encoding', data=_bytes('direct'))
            meta.create_dataset('timesteps', data=timesteps)
            if dataset is not None:
                meta.create_dataset('dataset', data=_bytes(dataset))
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, target)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


# ---------------------------------------------------------------------- loading
def _value(g, key, default=None):
    if key not in g:
        return default
    v = g[key][()]
    if isinstance(v, np.ndarray) and v.dtype.kind == 'S':
        v = v.reshape(-1)[0]
    if isinstance(v, bytes):
        return v.decode('ascii')
    return v


def _tuple(v):
    return tuple(int(x) for x in np.atleast_1d(v))


def _neuron_params(g):
    """``(kind, neuron_params)`` from a ``neuron`` group (``'QBLIF'`` or ``'CUBA'``)."""
    kind = _value(g, 'type')
    vth = np.asarray(_value(g, 'vThMant'))
    if kind == 'QBLIF':
        params = {
            'threshold': (vth / W_SCALE).tolist() if vth.ndim else float(vth) / W_SCALE,
            'current_decay': float(_value(g, 'iDecay')) / (S_SCALE),
            'voltage_decay': float(_value(g, 'vDecay')) / (S_SCALE),
            'max_burst': int(_value(g, 'maxBurst')),
            'reset_mode': _value(g, 'resetMode'),
            'per_channel': bool(vth.ndim),
        }
        return kind, params
    if kind == 'CUBA':
        if vth.ndim:
            raise NotImplementedError("per-channel vThMant is not supported for CUBA layers")
        return kind, {
            'threshold': float(vth) / W_SCALE,
            'current_decay': float(_value(g, 'iDecay')) / S_SCALE,
            'voltage_decay': float(_value(g, 'vDecay')) / S_SCALE,
            'graded_spike': bool(_value(g, 'gradedSpike', False)),
        }
    raise NotImplementedError(f"neuron type {kind!r} is not supported by load_network")


def _set_weight(syn, w):
    w = torch.tensor(np.asarray(w, dtype=np.float64) / W_SCALE, dtype=syn.weight.dtype)
    syn.weight.data = w.reshape(syn.weight.shape).to(syn.weight.device)


def _set_delay(b, g, i):
    """The ``delay`` dataset (integer steps, one per output neuron or channel) onto the
    block's axonal delay module."""
    d = np.asarray(g['delay'][()], dtype=np.float64).reshape(-1)
    if b.delay is None or not isinstance(b.delay, torch.nn.Module):
        raise NotImplementedError(f"layer {i}: 'delay' on a block without axonal delays")
    b.delay.delay.data = torch.tensor(d, dtype=torch.float32)
    b.delay.init = True


def _load_layer(g, i):
    kind = _value(g, 'type')
    if 'bias' in g and kind != 'input':
        raise NotImplementedError(f"layer {i}: 'bias' is not supported by load_network")
    if 'delay' in g and kind not in ('dense', 'conv', 'dense_rec'):
        raise NotImplementedError(f"layer {i}: 'delay' on a {kind!r} layer is not supported "
                                  f"by load_network")
    delay = 'delay' in g
    shape = torch.Size(_tuple(g['shape'][()])) if 'shape' in g else None
    if kind == 'flatten':
        b = qblock.Flatten()
        b.shape = [int(s) for s in shape]
        return b
    if kind == 'average':
        return qblock.Average(num_outputs=int(shape[0]))
    if 'neuron' in g:
        nkind, params = _neuron_params(g['neuron'])
        mod = qblock if nkind == 'QBLIF' else cuba
    elif kind == 'input':
        nkind, params, mod = None, None, qblock
    else:
        raise NotImplementedError(f"layer {i}: {kind!r} without a neuron group")
    if kind == 'input':
        kw = {}
        if 'weight' in g:
            kw['weight'] = float(np.asarray(g['weight'][()]).reshape(-1)[0]) / W_SCALE
        if 'bias' in g:
            kw['bias'] = float(np.asarray(g['bias'][()]).reshape(-1)[0]) / W_SCALE
        b = mod.Input(params, **kw)
        if params is None:
            b.input_shape = shape
    elif kind == 'dense':
        b = mod.Dense(params, int(_value(g, 'inFeatures')), int(_value(g, 'outFeatures')),
                      delay=delay)
        _set_weight(b.synapse, g['weight'][()])
    elif kind == 'dense_rec':
        if nkind != 'QBLIF':
            raise NotImplementedError(f"layer {i}: 'dense_rec' with a {nkind} neuron is not "
                                      f"supported by load_network")
        b = qblock.Recurrent(params, int(_value(g, 'inFeatures')), int(_value(g, 'outFeatures')),
                             delay=delay)
        _set_weight(b.input_synapse, g['weight'][()])
        _set_weight(b.recurrent_synapse, g['weight_rec'][()])
    elif kind == 'conv':
        b = mod.Conv(params, int(_value(g, 'inChannels')), int(_value(g, 'outChannels')),
                     _tuple(g['kernelSize'][()]), stride=_tuple(g['stride'][()]),
                     padding=_tuple(g['padding'][()]), dilation=_tuple(g['dilation'][()]),
                     groups=int(_value(g, 'groups')), delay=delay)
        _set_weight(b.synapse, g['weight'][()])
    elif kind == 'pool':
        b = mod.Pool(params, _tuple(g['kernelSize'][()]), stride=_tuple(g['stride'][()]),
                     padding=_tuple(g['padding'][()]), dilation=_tuple(g['dilation'][()]))
        _set_weight(b.synapse, g['weight'][()])
    else:
        raise NotImplementedError(f"layer {i}: type {kind!r} is not supported by load_network")
    if getattr(b, 'neuron', None) is not None and shape is not None:
        b.neuron.shape = shape
        b.neuron.num_neurons = int(np.prod(shape))
    if delay:
        _set_delay(b, g, i)
    return b


def load_network(path) -> Network:
    """Rebuild the SLAYER :class:`Network` stored in the NetX file ``path`` (quantized mode)."""
    with h5py.File(path, 'r') as f:
        layers = f['layer']
        blocks = [_load_layer(layers[f'{i}'], i) for i in range(len(layers))]
        meta = f['qblif'] if 'qblif' in f else {}
        net = Network(blocks,
                      input_shape=_tuple(meta['inputShape'][()]) if 'inputShape' in meta else None,
                      input_bits=int(_value(meta, 'inputBits')) if 'inputBits' in meta else None,
                      timesteps=int(_value(meta, 'timesteps')) if 'timesteps' in meta else None,
                      dataset=_value(meta, 'dataset') if 'dataset' in meta else None)
    return net
