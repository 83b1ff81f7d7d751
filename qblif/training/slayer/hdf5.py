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

from qblif.netx import check as nc
from qblif.netx.check import ModelFileError
from qblif.core.params import INPUT_BITS_RANGE, MAX_AXON_DELAY, TIMESTEPS_RANGE, VTH_RANGE, check_int_range, check_shape
from qblif.training.slayer import block as qblock
from qblif.training.slayer.neuron import S_SCALE, W_SCALE

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
    input_bits = int(check_int_range('input_bits', input_bits, *INPUT_BITS_RANGE))
    timesteps = int(check_int_range('timesteps', timesteps, *TIMESTEPS_RANGE))

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
# Every value is read and range-checked with qblif.netx.check, the checks the compiler
# uses: a file the compiler refuses as malformed is refused here too (ModelFileError, exit 2).
def _value(g, key, i, default=None):
    """A scalar or string dataset, decoded (``default`` when absent)."""
    if key not in g:
        return default
    raw = nc.dataset(g, key, i)
    if isinstance(raw, (bytes, str)) or (isinstance(raw, np.ndarray) and raw.dtype.kind in 'SUO'):
        return nc.read_string(g, key, i)
    return nc.read_int(g, key, i)


def _tuple(g, key, i):
    return tuple(int(x) for x in nc.read_array(g, key, i).reshape(-1))


def _neuron_params(g, i, shape):
    """``(kind, neuron_params)`` from a ``neuron`` group (``'QBLIF'`` or ``'CUBA'``)."""
    def val(k, default=None):
        try:
            return _value(g, k, i, default)
        except ModelFileError as exc:
            raise ModelFileError(exc.reason, i, f"neuron/{k}") from None

    kind = str(val('type')).upper()
    if kind not in ('QBLIF', 'CUBA', 'LOIHI'):
        raise ModelFileError(f"neuron type {kind!r} is not supported by load_network "
                             "(QBLIF or CUBA)", i, "neuron/type")
    kind = 'CUBA' if kind == 'LOIHI' else kind
    try:
        vth = nc.read_array(g, 'vThMant', i)
    except ModelFileError as exc:
        raise ModelFileError(exc.reason, i, "neuron/vThMant") from None
    i_decay, v_decay = val('iDecay'), val('vDecay')
    max_burst = val('maxBurst') if kind == 'QBLIF' else None
    reset_mode = val('resetMode', 'subtract') if kind == 'QBLIF' else None
    nc.check_neuron(i, kind, i_decay, v_decay, max_burst, reset_mode, val('refDelay', 1),
                    val('messageBits') if kind == 'QBLIF' else None)
    channels = None if shape is None else int(shape[0])
    if vth.size != 1 and (vth.ndim != 1 or kind == 'CUBA' or vth.shape[0] != channels):
        raise ModelFileError(f"shape {vth.shape} is neither a scalar nor per-channel "
                             f"({channels},)" + (" (CUBA: scalar only)" if kind == 'CUBA' else ""),
                             i, "neuron/vThMant")
    try:
        check_int_range('vThMant', vth if vth.size > 1 else vth.reshape(-1)[0], *VTH_RANGE,
                        shape=vth.shape)
    except ValueError as exc:
        raise ModelFileError(str(exc), i, "neuron/vThMant") from None
    if kind == 'QBLIF':
        return kind, {
            'threshold': ((vth / W_SCALE).tolist() if vth.size > 1
                          else float(vth.reshape(-1)[0]) / W_SCALE),
            'current_decay': float(i_decay) / S_SCALE,
            'voltage_decay': float(v_decay) / S_SCALE,
            'max_burst': int(max_burst),
            'reset_mode': reset_mode,
            'per_channel': vth.size > 1,
        }
    return kind, {
        'threshold': float(vth.reshape(-1)[0]) / W_SCALE,
        'current_decay': float(i_decay) / S_SCALE,
        'voltage_decay': float(v_decay) / S_SCALE,
        'graded_spike': bool(val('gradedSpike', 0)),
    }


def _set_weight(syn, g, i, key='weight'):
    w = nc.read_array(g, key, i)
    nc.check_weight(i, w)
    if w.size != syn.weight.numel():
        want = tuple(syn.weight.shape)
        want = want[:2] if len(want) == 5 and want[2:] == (1, 1, 1) else want
        raise ModelFileError(f"{w.size} values of shape {w.shape} do not fit the layer's "
                             f"weight {want}", i, key)
    w = torch.tensor(w.astype(np.float64) / W_SCALE, dtype=syn.weight.dtype)
    syn.weight.data = w.reshape(syn.weight.shape).to(syn.weight.device)


def _set_delay(b, g, i):
    """The ``delay`` dataset (integer steps, one per output neuron or channel) onto the
    block's axonal delay module."""
    d = nc.read_array(g, 'delay', i).astype(np.float64).reshape(-1)
    if d.min() < 0 or d.max() > MAX_AXON_DELAY:
        raise ModelFileError(f"delays in [{d.min():.0f}, {d.max():.0f}] are out of range "
                             f"[0, {MAX_AXON_DELAY}]", i, "delay")
    if b.delay is None or not isinstance(b.delay, torch.nn.Module):
        raise ModelFileError("'delay' on a block without axonal delays", i, "delay")
    b.delay.delay.data = torch.tensor(d, dtype=torch.float32)
    b.delay.init = True


def _positive(i, key, values, lo=1, hi=1024):
    """Kernel sizes, strides, paddings, dilations (the compiler's [lo, 1024]); features and
    channels with ``hi=MAX_ELEMENTS``."""
    if any(v < lo or v > hi for v in values):
        raise ModelFileError(f"{key}={tuple(values)} is out of range [{lo}, {hi}]", i, key)
    return values


def _count(g, key, i) -> int:
    """A feature or channel count: an int in 1 .. MAX_ELEMENTS."""
    return _positive(i, key, [_value(g, key, i)], 1, nc.MAX_ELEMENTS)[0]


def _load_layer(g, i):
    kind = str(_value(g, 'type', i)).lower()
    if 'bias' in g and kind != 'input':
        raise ModelFileError("'bias' is not supported by load_network", i, 'bias')
    if 'delay' in g and kind not in ('dense', 'conv', 'dense_rec'):
        raise ModelFileError(f"'delay' on a {kind!r} layer is not supported by load_network",
                             i, 'delay')
    delay = 'delay' in g
    shape = _tuple(g, 'shape', i) if 'shape' in g else None
    if shape is not None and (not shape or any(s <= 0 for s in shape)
                              or np.prod(shape, dtype=float) > nc.MAX_ELEMENTS):
        raise ModelFileError(f"invalid shape {shape}", i, "shape")
    if kind == 'flatten':
        b = qblock.Flatten()
        b.shape = None if shape is None else [int(s) for s in shape]
        return b
    if kind == 'average':
        return qblock.Average(num_outputs=int(shape[0]))
    if 'neuron' in g:
        nkind, params = _neuron_params(nc.subgroup(g, 'neuron', i), i, shape)
        mod = qblock if nkind == 'QBLIF' else cuba
    elif kind == 'input':
        nkind, params, mod = None, None, qblock
    else:
        raise ModelFileError(f"a {kind!r} layer without a neuron group", i, "neuron")
    if kind == 'input':
        kw = {}
        for key in ('weight', 'bias'):
            if key in g:
                kw[key] = float(nc.read_array(g, key, i, integer=False).reshape(-1)[0]) / W_SCALE
        b = mod.Input(params, **kw)
        if params is None:
            b.input_shape = None if shape is None else torch.Size(shape)
    elif kind == 'dense':
        b = mod.Dense(params, _count(g, 'inFeatures', i), _count(g, 'outFeatures', i),
                      delay=delay)
        _set_weight(b.synapse, g, i)
    elif kind == 'dense_rec':
        if nkind != 'QBLIF':
            raise ModelFileError(f"'dense_rec' with a {nkind} neuron is not supported by "
                                 "load_network", i, "neuron/type")
        b = qblock.Recurrent(params, _count(g, 'inFeatures', i), _count(g, 'outFeatures', i),
                             delay=delay)
        _set_weight(b.input_synapse, g, i)
        _set_weight(b.recurrent_synapse, g, i, 'weight_rec')
    elif kind == 'conv':
        b = mod.Conv(params, _count(g, 'inChannels', i),
                     _count(g, 'outChannels', i),
                     _positive(i, 'kernelSize', _tuple(g, 'kernelSize', i)),
                     stride=_positive(i, 'stride', _tuple(g, 'stride', i)),
                     padding=_positive(i, 'padding', _tuple(g, 'padding', i), 0),
                     dilation=_positive(i, 'dilation', _tuple(g, 'dilation', i)),
                     groups=_positive(i, 'groups', [_value(g, 'groups', i)])[0], delay=delay)
        _set_weight(b.synapse, g, i)
    elif kind == 'pool':
        b = mod.Pool(params, _positive(i, 'kernelSize', _tuple(g, 'kernelSize', i)),
                     stride=_positive(i, 'stride', _tuple(g, 'stride', i)),
                     padding=_positive(i, 'padding', _tuple(g, 'padding', i), 0),
                     dilation=_positive(i, 'dilation', _tuple(g, 'dilation', i)))
        _set_weight(b.synapse, g, i)
    else:
        raise ModelFileError(f"type {kind!r} is not supported by load_network", i, "type")
    if kind in ('dense', 'conv') and shape is not None:
        outs = int(b.synapse.out_channels)
        if (int(np.prod(shape)) if kind == 'dense' else shape[0]) != outs:
            raise ModelFileError(f"shape {shape} disagrees with the layer's {outs} output "
                                 f"{'features' if kind == 'dense' else 'channels'}", i, "shape")
    if getattr(b, 'neuron', None) is not None and shape is not None:
        b.neuron.shape = torch.Size(shape)
        b.neuron.num_neurons = int(np.prod(shape))
    if delay:
        _set_delay(b, g, i)
    return b


def load_network(path) -> Network:
    """Rebuild the SLAYER :class:`Network` stored in the NetX file ``path`` (quantized mode).

    Every value is checked as the compiler checks it (:mod:`qblif.netx.check`): a missing
    or malformed key, NaN/infinite or non-integer values, wrong weight shapes, out-of-range
    neuron parameters or metadata (e.g. ``/qblif/timesteps`` past
    :data:`qblif.core.params.TIMESTEPS_RANGE`), an unsupported layer or an unreadable file raise
    :class:`qblif.netx.check.ModelFileError` (one line naming layer and key), never
    another exception.
    """
    f = nc.open_file(path)
    try:
        with f:
            return _load_file(f)
    except ModelFileError:
        raise
    except Exception as exc:  # anything a malformed file can still provoke in torch/lava-dl
        raise ModelFileError(f"{path}: cannot be loaded ({type(exc).__name__}: {exc})") from None


def _load_file(f) -> Network:
    layers = nc.subgroup(f, 'layer', None)
    names = list(layers.keys())
    if not names or sorted(names, key=lambda s: (len(s), s)) != [str(k) for k in range(len(names))]:
        raise ModelFileError(f"layer names must be 0..{len(names) - 1}, found {sorted(names)[:8]}",
                             None, "layer")
    blocks = [_load_layer(nc.subgroup(layers, f'{i}', i), i) for i in range(len(names))]
    meta = nc.subgroup(f, 'qblif', None) if 'qblif' in f else {}
    shape = _tuple(meta, 'inputShape', 'qblif') if 'inputShape' in meta else None
    bits = nc.read_int(meta, 'inputBits', 'qblif') if 'inputBits' in meta else None
    steps = nc.read_int(meta, 'timesteps', 'qblif') if 'timesteps' in meta else None
    nc.check_meta(bits, steps, shape)
    dataset = nc.read_string(meta, 'dataset', 'qblif') if 'dataset' in meta else None
    return Network(blocks, input_shape=shape, input_bits=bits, timesteps=steps, dataset=dataset)
