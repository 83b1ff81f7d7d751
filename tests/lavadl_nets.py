"""Test fixture: small networks built from lava-dl 0.6.0's own SLAYER blocks, one per NetX
feature, with random 8-bit weights for a seed, exported by lava-dl's ``export_hdf5``.

    info = make_net(feature, seed, path)        # writes the NetX file ``path``
    x = make_input(info, seed, steps)           # an input the file's first layer takes

``make_net`` returns a dict:

* ``path`` (str), ``feature`` (str), ``seed`` (int);
* ``input_shape``: one input frame in lava-dl order (``(F,)`` or ``(C, H, W)``);
* ``input_kind``: how the network is fed (see :data:`INPUT_KINDS`);
* ``layer_types``: the exported ``type`` of every ``/layer/<i>``;
* ``blocks``: the lava-dl blocks (``torch.nn.ModuleList``, eval mode) that were exported,
  for a SLAYER forward (``forward(info, x)``);
* ``notes``: what the fixture worked around to export it (empty when nothing).

Weights are drawn as integer mantissas ``m`` and set to ``2 m / 64``: lava-dl's
``quantize_8bit`` (step 2/64, clamp [-256, 254]/64) leaves them unchanged, so the exported
``weight`` datasets are the even integers ``2 m`` in [-256, 254], exactly a Loihi 8-bit
synapse (``check_file`` asserts it on every file). Axonal delays are random integers.
"""
from __future__ import annotations

import os

import h5py
import numpy as np
import torch
import torch.nn.functional as F

import qblif.training.lavadl  # noqa: F401  (silences lava-dl's import-time prints)
from lava.lib.dl.slayer.block import alif, cuba, rf, rf_iz, sigma_delta
from lava.lib.dl.slayer.synapse import complex as complex_synapse

__all__ = ['FEATURES', 'INPUT_KINDS', 'STOCK_INPUT_MODE', 'STOCK_INPUT_BITS', 'make_net',
           'make_input',
           'make_stream', 'forward', 'check_file', 'cuba_dense_pair']

#: how a network's first layer is fed:
#: ``spikes``: binary spikes ``(T, *input_shape)`` into a neuron-less input layer (stock:
#: a RingBuffer into ``net.inp``); ``bias``: a static frame of integer bias mantissas
#: ``input_shape`` for an input layer with a CUBA neuron (stock: ``bias_mant``);
#: ``signed``: signed graded values ``(T, *input_shape)`` (integers, 6 fraction bits) into
#: an SDNN input layer's Delta neuron (stock: a RingBuffer into ``in_layer.neuron.a_in``);
#: ``graded``: time-varying unsigned integers ``(T, *input_shape)`` in [0, 16) into a
#: neuron-less input layer (stock: ``net.inp`` with ``input_message_bits=4``).
INPUT_KINDS = ('spikes', 'bias', 'signed', 'graded')
#: ``stock_netx.run_stock``'s ``input_mode`` for each input kind
STOCK_INPUT_MODE = {'spikes': 'inp', 'bias': 'bias', 'signed': 'a_in', 'graded': 'inp'}
#: ``stock_netx.run_stock``'s ``input_message_bits`` for each input kind
STOCK_INPUT_BITS = {'spikes': 0, 'bias': 0, 'signed': 0, 'graded': 4}

CUBA = dict(threshold=3.0, current_decay=0.25, voltage_decay=0.03, tau_grad=1.0,
            scale_grad=1.0, requires_grad=False)
ALIF = dict(threshold=3.0, threshold_step=0.5, current_decay=0.25, voltage_decay=0.03,
            threshold_decay=0.1, refractory_decay=0.1, requires_grad=False)
RF = dict(threshold=0.5, period=4, decay=0.05, requires_grad=False)
SDNN = dict(threshold=0.1, activation=F.relu, requires_grad=False)

MAX_DELAY = 4          # random axonal delays in 0..MAX_DELAY steps (lava-dl allows 0..62)
DENSE_IN = 8           # input features of the dense networks
CONV_IN = (2, 6, 6)    # (C, H, W) input of the conv networks


def _weights(module, rng, lo=-60, hi=80):
    """Set every ``weight`` parameter under ``module`` to ``2 m / 64``, ``m`` in [lo, hi)."""
    for name, p in module.named_parameters():
        if name.endswith('weight') and p.dim() >= 2:
            m = rng.integers(lo, hi, size=tuple(p.shape))
            p.data = torch.tensor(2.0 * m / 64.0, dtype=p.dtype)


def _delays(block, rng, channels):
    """Random integer axonal delays (0..MAX_DELAY) on a ``delay=True`` block's ``Delay``."""
    d = rng.integers(0, MAX_DELAY + 1, size=channels)
    d[0] = MAX_DELAY                    # at least one long delay in every layer
    block.delay.delay.data = torch.tensor(d, dtype=torch.float32)
    block.delay.init = True


def _input(neuron_params=None, **kw):
    # lava-dl bug workaround: a neuron-less cuba.Input with the default delay_shift=True
    # fails in forward (block.base.step_delay reads module.neuron.persistent_state of the
    # None neuron), so neuron-less inputs get delay_shift=False (which is also what stock
    # NetX does: a neuron-less input layer is no process, its spikes go straight to layer 1).
    if neuron_params is None:
        return cuba.Input(None, delay_shift=False, **kw)
    return cuba.Input(neuron_params, **kw)


def _average_export(block):
    """lava-dl bug workaround: ``AbstractAverage.export_hdf5`` reads ``self.neuron.shape``,
    which an Average block has not (AttributeError). Write what it means to write: type
    ``average`` and the block's shape ``[num_outputs, 1, 1]`` (as ntidigits.net has)."""
    def export_hdf5(handle):
        handle.create_dataset('type', (1, ), 'S10', [b'average'])
        handle.create_dataset('shape', data=np.array(block.shape))
    block.export_hdf5 = export_hdf5
    return block


def _rf_dense(module, params, n_in, n_out):
    """An RF/RF-Iz dense block with lava-dl's complex synapse.

    Fixture workaround: lava-dl 0.6.0's ``rf.Dense``/``rf_iz.Dense`` build a real
    ``synapse.layer.Dense``, whose output the RF neurons (which take a ``(real, imag)``
    tuple) cannot take. lava-dl's complex synapse (``synapse.complex.Dense``) is swapped
    in, which is what makes ``AbstractDense.export_hdf5`` write ``weight/real`` and
    ``weight/imag``."""
    b = module.Dense(params, n_in, n_out)
    b.synapse = complex_synapse.Dense(n_in, n_out, pre_hook_fx=b.neuron.quantize_8bit)
    return b


# ---------------------------------------------------------------- the networks
def _net_dense(rng):
    return [_input(), cuba.Dense(CUBA, DENSE_IN, 10), cuba.Dense(CUBA, 10, 4)], (DENSE_IN,), \
        'spikes', []


#: input neurons as lava-dl's shipped nets have them (iDecay 4096: the current is the input
#: of the step), which makes a constant input equal to stock's bias drive (Lava's LIF adds
#: ``bias_mant`` to ``v`` directly; ``u`` with current_decay 1 is the step's input)
CUBA_IN = dict(CUBA, current_decay=1.0)


def _net_graded_input(rng):
    return [_input(), cuba.Dense(CUBA, DENSE_IN, 10), cuba.Dense(CUBA, 10, 4)], (DENSE_IN,), \
        'graded', []


def _net_input_neuron(rng):
    return [_input(CUBA_IN), cuba.Dense(CUBA, DENSE_IN, 6), cuba.Dense(CUBA, 6, 4)], \
        (DENSE_IN,), 'bias', []


def _net_input_transform(rng):
    # the input layer's affine transform (weight 1.5, bias 0.25: exported as the mantissas
    # 96 and 16), which lava-dl applies to the input and stock NetX stores but never applies
    return [_input(CUBA_IN, weight=1.5, bias=0.25), cuba.Dense(CUBA, DENSE_IN, 6),
            cuba.Dense(CUBA, 6, 4)], (DENSE_IN,), 'bias', []


def _net_input_neuron_conv(rng):
    return [_input(CUBA_IN), cuba.Conv(CUBA, 2, 4, 3), cuba.Flatten(),
            cuba.Dense(CUBA, 4 * 4 * 4, 5)], CONV_IN, 'bias', []


def _net_conv(rng):
    return [_input(), cuba.Conv(CUBA, 2, 4, 3, padding=1), cuba.Conv(CUBA, 4, 3, 3, stride=2),
            cuba.Flatten(), cuba.Dense(CUBA, 3 * 2 * 2, 5)], CONV_IN, 'spikes', []


def _net_pool(rng):
    return [_input(), cuba.Conv(CUBA, 2, 4, 3, padding=1), cuba.Pool(CUBA, 2),
            cuba.Flatten(), cuba.Dense(CUBA, 4 * 3 * 3, 5)], CONV_IN, 'spikes', []


def _net_recurrent(rng):
    return [_input(), cuba.Recurrent(dict(CUBA), DENSE_IN, 6), cuba.Dense(CUBA, 6, 4)], \
        (DENSE_IN,), 'spikes', []


def _net_recurrent_delay(rng):
    return [_input(), cuba.Recurrent(dict(CUBA), DENSE_IN, 6, delay=True),
            cuba.Dense(CUBA, 6, 4)], (DENSE_IN,), 'spikes', []


def _net_dense_delay(rng):
    return [_input(), cuba.Dense(CUBA, DENSE_IN, 10, delay=True),
            cuba.Dense(CUBA, 10, 6, delay=True), cuba.Dense(CUBA, 6, 4)], (DENSE_IN,), \
        'spikes', []


def _net_conv_delay(rng):
    return [_input(), cuba.Conv(CUBA, 2, 4, 3, padding=1, delay=True), cuba.Flatten(),
            cuba.Dense(CUBA, 4 * 6 * 6, 5)], CONV_IN, 'spikes', []


def _net_graded(rng):
    graded = dict(CUBA, graded_spike=True)
    return [_input(), cuba.Dense(graded, DENSE_IN, 10), cuba.Dense(CUBA, 10, 4)], \
        (DENSE_IN,), 'spikes', []


def _net_affine(rng):
    # cuba.Affine (dynamics=True): a CUBA readout without spikes, exported as 'dense' with
    # vThMant = 2^18 - 1 (above the 17 bits of a QB-LIF threshold)
    return [_input(), cuba.Dense(CUBA, DENSE_IN, 10), cuba.Affine(CUBA, 10, 4)], \
        (DENSE_IN,), 'spikes', []


def _net_dense_no_neuron(rng):
    # cuba.Affine(dynamics=False): the synaptic sum as output, exported as 'dense' with no
    # neuron group (as mnist.net's last layer)
    return [_input(), cuba.Dense(CUBA, DENSE_IN, 10),
            cuba.Affine(CUBA, 10, 4, dynamics=False)], (DENSE_IN,), 'spikes', []


def _net_average(rng):
    return [_input(), cuba.Dense(CUBA, DENSE_IN, 12), cuba.Dense(CUBA, 12, 6),
            _average_export(cuba.Average(num_outputs=3))], (DENSE_IN,), 'spikes', \
        ['cuba.Average.export_hdf5 fails (reads self.neuron): written by hand']


def _net_rf(rng):
    return [_input(), _rf_dense(rf, RF, DENSE_IN, 6), cuba.Dense(CUBA, 6, 4)], (DENSE_IN,), \
        'spikes', ['rf.Dense gets lava-dl complex synapse (its real one cannot feed RF)']


def _net_rf_iz(rng):
    return [_input(), _rf_dense(rf_iz, RF, DENSE_IN, 6), cuba.Dense(CUBA, 6, 4)], \
        (DENSE_IN,), 'spikes', \
        ['rf_iz.Dense gets lava-dl complex synapse (its real one cannot feed RF-Iz)']


def _net_alif(rng):
    return [_input(), alif.Dense(ALIF, DENSE_IN, 6), alif.Dense(ALIF, 6, 4)], (DENSE_IN,), \
        'spikes', []


def _net_sdnn(rng):
    return [sigma_delta.Input(SDNN), sigma_delta.Dense(SDNN, DENSE_IN, 10),
            sigma_delta.Output(SDNN, 10, 4)], (DENSE_IN,), 'signed', []


_BUILDERS = {
    'dense': _net_dense,
    'graded_input': _net_graded_input,
    'input_neuron': _net_input_neuron,
    'input_transform': _net_input_transform,
    'input_neuron_conv': _net_input_neuron_conv,
    'conv': _net_conv,
    'pool': _net_pool,
    'recurrent': _net_recurrent,
    'recurrent_delay': _net_recurrent_delay,
    'dense_delay': _net_dense_delay,
    'conv_delay': _net_conv_delay,
    'graded': _net_graded,
    'affine': _net_affine,
    'dense_no_neuron': _net_dense_no_neuron,
    'average': _net_average,
    'rf': _net_rf,
    'rf_iz': _net_rf_iz,
    'alif': _net_alif,
    'sdnn': _net_sdnn,
}
#: every feature :func:`make_net` builds. lava-dl 0.6.0 exports no ``concat`` block (none
#: of its block modules has one), so there is no lava-dl-made concat network.
FEATURES = tuple(_BUILDERS)


def make_input(info: dict, seed: int, steps: int) -> np.ndarray:
    """An input for ``info``'s network (integers, lava-dl axis order):

    ``spikes``: binary ``(steps, *input_shape)`` (about 40 % ones); ``bias``: a frame of
    even bias mantissas ``input_shape`` in [0, 160) (weight units; even as lava-dl's input
    ``pre_hook_fx`` quantizes to 2/64; a CUBA neuron of threshold ``vThMant = 80`` fires
    within a few steps for the larger ones); ``signed``: graded
    ``(steps, *input_shape)`` in [-128, 128) (value x 64, as SDNN messages); ``graded``:
    ``(steps, *input_shape)`` in [0, 16) (4-bit graded events, weight x value)."""
    rng = np.random.default_rng(seed + 1000)
    shape = tuple(info['input_shape'])
    kind = info['input_kind']
    if kind == 'spikes':
        return (rng.random((steps,) + shape) < 0.4).astype(np.int64)
    if kind == 'bias':
        return 2 * rng.integers(0, 80, size=shape).astype(np.int64)
    if kind == 'signed':
        return rng.integers(-128, 128, size=(steps,) + shape).astype(np.int64)
    if kind == 'graded':
        return rng.integers(0, 16, size=(steps,) + shape).astype(np.int64)
    raise ValueError(f"unknown input kind {kind!r}")


def make_stream(info: dict, seed: int, steps: int, active: int) -> np.ndarray:
    """:func:`make_input` for ``active`` steps, then zeros up to ``steps`` (a single pass
    through a cyclic Lava RingBuffer); a ``bias`` frame is returned as it is."""
    x = make_input(info, seed, active)
    if info['input_kind'] == 'bias':
        return x
    return np.concatenate([x, np.zeros((steps - active,) + x.shape[1:], x.dtype)])


def _slayer_input(info, x, steps):
    """``x`` of :func:`make_input` as lava-dl's ``(1, *shape, T)`` float tensor."""
    x = np.asarray(x, dtype=np.float64)
    if info['input_kind'] == 'bias':
        # the frame drives the input neuron as a constant input of x / 64 per step
        return torch.tensor(x / 64.0, dtype=torch.float32)[None, ..., None].expand(
            (1,) + x.shape + (steps,)).contiguous()
    t = torch.tensor(x, dtype=torch.float32).movedim(0, -1)[None]
    return t / 64.0 if info['input_kind'] == 'signed' else t


def forward(info: dict, x: np.ndarray, steps: int = 16) -> list:
    """lava-dl's SLAYER forward of ``info['blocks']`` on ``x`` (:func:`make_input`; a
    ``bias`` frame is held for ``steps`` steps): the output of every block, as numpy
    ``(T, *shape)`` (time first, as :func:`stock_netx.run_stock` records)."""
    z = _slayer_input(info, x, steps)
    outs = []
    with torch.no_grad():
        for b in info['blocks']:
            z = b(z)
            z = z[0] if isinstance(z, tuple) else z
            outs.append(np.moveaxis(z[0].numpy().astype(np.float64), -1, 0))
    return outs


def _init_and_set(blocks, rng, input_shape, kind):
    """One forward sets lava-dl's lazily known shapes (neuron shapes, delay sizes); then
    the weights and delays are drawn."""
    x = torch.zeros((1,) + tuple(input_shape) + (2,))
    with torch.no_grad():
        z = x
        for b in blocks:
            z = b(z)
            z = z[0] if isinstance(z, tuple) else z
    for b in blocks:
        _weights(b, rng)
        if getattr(b, 'delay', None) is not None and isinstance(b.delay, torch.nn.Module):
            _delays(b, rng, int(b.delay.delay.shape[0]))
        if isinstance(b, cuba.Recurrent):
            b.spike_state = torch.zeros(1)   # the shape-setting forward's state: forget it
        if hasattr(b, 'delay_buffer'):
            b.delay_buffer = None


def make_net(feature: str, seed: int, path) -> dict:
    """Build ``feature``'s network (random weights for ``seed``) and export it to ``path``
    with lava-dl's block ``export_hdf5`` (``/layer/<i>``). See the module docstring for the
    returned dict."""
    if feature not in _BUILDERS:
        raise ValueError(f"unknown feature {feature!r}; known: {', '.join(FEATURES)}")
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    blocks, input_shape, kind, notes = _BUILDERS[feature](rng)
    blocks = torch.nn.ModuleList(blocks).eval()
    _init_and_set(blocks, rng, input_shape, kind)
    path = os.fspath(path)
    with h5py.File(path, 'w') as f:
        layer = f.create_group('layer')
        for i, b in enumerate(blocks):
            b.export_hdf5(layer.create_group(f'{i}'))
    info = dict(path=path, feature=feature, seed=int(seed), input_shape=tuple(input_shape),
                input_kind=kind, blocks=blocks, notes=list(notes))
    info['layer_types'] = check_file(path)
    return info


def check_file(path) -> list:
    """The ``type`` of every layer of ``path``; asserts that every weight dataset holds even
    integers in [-256, 254] (Loihi 8-bit synapses, as lava-dl exports them) and every
    ``delay`` dataset non-negative integers <= 62."""
    types = []
    with h5py.File(path, 'r') as f:
        layers = f['layer']
        for i in range(len(layers)):
            g = layers[f'{i}']
            types.append(g['type'][0].decode('ascii'))

            def visit(name, obj, i=i):
                if not isinstance(obj, h5py.Dataset):
                    return
                if name.startswith('weight'):
                    w = obj[()]
                    assert np.all(w == np.round(w)) and np.all(w % 2 == 0), \
                        f"layer {i} {name}: not even integers"
                    assert w.min() >= -256 and w.max() <= 254, f"layer {i} {name}: range"
                if name == 'delay':
                    d = obj[()]
                    assert np.all(d == np.round(d)) and d.min() >= 0 and d.max() <= 62, \
                        f"layer {i} delay: {d}"
            g.visititems(visit)
    return types


def cuba_dense_pair(path) -> str:
    """Two lava-dl ``cuba.Dense`` blocks 10 -> 8 -> 4 with lava-dl's own random weights
    (``torch.manual_seed(0)``, weight scales 3 and 6), no input layer (the first layer is
    synaptic), exported to ``path`` after one forward pass (which sets what
    ``export_hdf5`` writes). Returns ``path`` as a str."""
    torch.manual_seed(0)
    p = {"threshold": 0.1, "current_decay": 0.25, "voltage_decay": 0.03}
    blocks = [cuba.Dense(p, 10, 8, weight_scale=3), cuba.Dense(p, 8, 4, weight_scale=6)]
    x = torch.rand(1, 10, 3)
    for b in blocks:
        x = b(x)
    with h5py.File(path, "w") as f:
        for i, b in enumerate(blocks):
            b.export_hdf5(f.create_group(f"layer/{i}"))
    return str(path)
