"""Test fixture: run a NetX HDF5 file through stock lava-dl ``netx.hdf5.Network`` in Lava
(``Loihi2SimCfg``, ``fixed_pt`` = bit-accurate by default) and record every layer; load the
ground truths shipped in lava-dl's wheel.

    out = run_stock(path, inputs, steps, input_mode='inp', input_message_bits=0,
                    reset_interval=None, reset_offset=0, record_uv=False)
    out[i]      # spikes of file layer i, (steps, *shape) in the file's (lava-dl) axis order
    out.u[i], out.v[i]   # the neuron's u and v after each step (record_uv=True, where the
                         # neuron has Vars u and v), same shape
    out.layers  # the file layer index of every stock layer; out.net: stock's table string

Axis order: everything here is in the file's (lava-dl) order, ``(C, H, W)`` or ``(F,)``;
stock NetX works in Lava's ``(W, H, C)``, the conversion is done here. Time is the first
axis. ``out[i][t]`` is what the layer sent at Lava step ``t`` (0-based).

Input modes (how stock NetX can be fed):

* ``'inp'``: ``inputs`` ``(T_in, *input_shape)`` streamed by a RingBuffer into ``net.inp``
  (networks whose input layer has no neuron; graded with ``input_message_bits``);
* ``'bias'``: ``inputs`` one frame ``input_shape`` of integer mantissas written to the input
  layer neuron's ``bias_mant`` (stock's only way to drive an input layer with a CUBA
  neuron: lava-dl 0.6.0's netx ``Input`` block never connects ``inp`` to its neuron);
* ``'a_in'``: ``inputs`` ``(T_in, *input_shape)`` streamed into ``net.in_layer.neuron.a_in``
  (what lava-dl's pilotnet_sdnn test does for an SDNN input layer).

``T_in < steps``: the source repeats its data (a Lava RingBuffer is cyclic), so pad with
zeros for a single pass. The runtime is always stopped (``qblif.lava.session``).
"""
from __future__ import annotations

import gc
import os
from typing import Optional

import h5py
import numpy as np

from qblif.lava.session import lava_session

__all__ = ['StockResult', 'run_stock', 'stock_layers', 'GTS_DIR', 'NETX_TEST_DIR',
           'load_gt', 'GROUND_TRUTHS']


def _netx_test_dir() -> str:
    import lava.lib.dl.netx as netx
    site = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.dirname(netx.__file__)))))
    return os.path.join(site, 'tests', 'lava', 'lib', 'dl', 'netx')


#: lava-dl's shipped netx tests (``tiny.net``, ``mnist.net``) and their ``gts/``
NETX_TEST_DIR = _netx_test_dir()
GTS_DIR = os.path.join(NETX_TEST_DIR, 'gts')


class StockResult(dict):
    """``{file layer index: spikes (T, *shape)}`` with ``u``, ``v`` (dicts of the same form,
    empty unless recorded), ``layers`` (file index of each stock layer) and ``net`` (stock's
    layer table)."""
    u: dict
    v: dict
    layers: list
    net: str


def stock_layers(path, num_layers: Optional[int] = None, skip_layers: int = 0) -> list:
    """File layer indices of the layers stock ``hdf5.Network`` builds, in order (the rule
    of ``Network._create``: inputs with a neuron, conv, dense, dense_rec; not flatten or a
    neuron-less input). Raises ``NotImplementedError`` for the types stock refuses."""
    out = []
    with h5py.File(path, 'r') as f:
        layers = f['layer']
        n = len(layers) if num_layers is None else min(len(layers), num_layers)
        for i in range(n):
            g = layers[f'{i}']
            kind = g['type'][0].decode('ascii') if g['type'].shape else g['type'][()].decode()
            if kind in ('pool', 'convT', 'unpool', 'average', 'concat'):
                raise NotImplementedError(f'{kind} is not implemented.')
            if kind == 'input' and 'neuron' not in g:
                continue
            if kind == 'flatten':
                continue
            if i >= skip_layers:
                out.append(i)
    return out


def _close_h5(path) -> None:
    """Close every open h5py handle on ``path``: stock's ``NetDict`` opens the file and
    never closes it (also when the constructor raises), after which h5py refuses to
    rewrite the path in this process. The layers are built by then."""
    target = os.path.abspath(path)
    for obj in gc.get_objects():
        try:
            if isinstance(obj, h5py.File) and obj.id.valid \
                    and os.path.abspath(obj.filename) == target:
                obj.close()
        except Exception:  # noqa: BLE001 - a handle closing under us is fine
            pass


def _to_lava(frame: np.ndarray, shape) -> np.ndarray:
    """One frame in file order -> Lava's order of a port of ``shape`` (flat ports take the
    file's C-major flatten, as stock's flatten connection does)."""
    frame = np.asarray(frame)
    if len(shape) == 1:
        return frame.reshape(shape)
    return frame.transpose(tuple(range(frame.ndim - 1, -1, -1))).reshape(shape)


def _from_lava(data: np.ndarray) -> np.ndarray:
    """Sink/monitor data ``(*lava shape, T)`` -> ``(T, *file shape)``."""
    data = np.moveaxis(np.asarray(data), -1, 0)
    return data.transpose((0,) + tuple(range(data.ndim - 1, 0, -1)))


def run_stock(path, inputs, steps: int, *, input_mode: str = 'inp',
              input_message_bits: int = 0, reset_interval: Optional[int] = None,
              reset_offset: int = 0, record_uv: bool = False,
              num_layers: Optional[int] = None, skip_layers: int = 0,
              spike_exp: int = 6, tag: str = 'fixed_pt') -> StockResult:
    """Run ``path`` in stock NetX for ``steps`` steps and record every layer (see the module
    docstring). ``reset_interval``/``reset_offset``/``num_layers``/``skip_layers``/
    ``spike_exp``/``input_message_bits`` are passed to ``netx.hdf5.Network`` as they are."""
    from lava.lib.dl import netx
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.proc.io.sink import RingBuffer as Sink
    from lava.proc.io.source import RingBuffer as Source
    from lava.proc.monitor.process import Monitor

    path = os.fspath(path)
    try:
        net = netx.hdf5.Network(net_config=path, num_layers=num_layers,
                                skip_layers=skip_layers, input_message_bits=input_message_bits,
                                reset_interval=reset_interval, reset_offset=reset_offset,
                                spike_exp=spike_exp)
    finally:
        _close_h5(path)
    index = stock_layers(path, num_layers, skip_layers)
    assert len(index) == len(net.layers), (index, len(net.layers))
    inputs = np.asarray(inputs)
    if input_mode == 'bias':
        neuron = net.in_layer.neuron
        neuron.bias_mant.init = _to_lava(inputs, neuron.bias_mant.shape).astype(np.int32)
        source = None
    elif input_mode in ('inp', 'a_in'):
        port = net.inp if input_mode == 'inp' else net.in_layer.neuron.a_in
        data = np.stack([_to_lava(x, port.shape) for x in inputs], axis=-1)
        source = Source(data=data.astype(np.int32))
        source.s_out.connect(port)
    else:
        raise ValueError(f"input_mode {input_mode!r}: expected 'inp', 'bias' or 'a_in'")
    sinks, monitors = [], []
    for ly in net.layers:
        sink = Sink(shape=ly.out.shape, buffer=steps)
        ly.out.connect(sink.a_in)
        sinks.append(sink)
        mons = {}
        if record_uv:
            for var in ('u', 'v'):
                if hasattr(ly.neuron, var):
                    mon = Monitor()
                    mon.probe(getattr(ly.neuron, var), steps)
                    mons[var] = mon
        monitors.append(mons)
    result = StockResult()
    result.u, result.v, result.layers, result.net = {}, {}, index, str(net)
    with lava_session(net):
        net.run(condition=RunSteps(num_steps=steps), run_cfg=Loihi2SimCfg(select_tag=tag))
        for i, ly, sink, mons in zip(index, net.layers, sinks, monitors):
            result[i] = _from_lava(sink.data.get())
            for var, mon in mons.items():
                data = mon.get_data()[ly.neuron.name][var]          # (T, *lava shape)
                data = np.moveaxis(data.reshape((steps,) + tuple(getattr(ly.neuron, var).shape)), 0, -1)
                getattr(result, var)[i] = _from_lava(data)
    return result


# ---------------------------------------------------------------- shipped ground truths
#: the ground truths of lava-dl 0.6.0's netx tests this loader knows
GROUND_TRUTHS = ('tinynet', 'pilotnet_lif', 'pilotnet_sdnn', 'ntidigits')


def load_gt(name: str) -> dict:
    """One shipped ground truth, arrays as lava-dl's tests use them:

    * ``tinynet``: ``path`` (tiny.net), ``bias`` (the input layer's ``bias_mant``, Lava
      ``(W, H, C)``), ``output`` (``(W, H, C, 15)``: the output layer's spikes,
      ``gts/tinynet/output.npy[0]`` to WHC, first step dropped; lava-dl compares it with
      stock's ``output[..., 2:17]`` after 17 + 3 steps with resets every 17 steps);
    * ``pilotnet_lif``: ``path``, ``bias`` (``image.npy``, WHC), and ``layers``: a list of
      dicts per stock layer (file layers 0-5, 7-10) with ``s``, ``u``, ``v`` as shipped
      (``(*WHC, 24)`` time last; the readout ``fc-3`` has ``(1, 25)``; the input layer has
      only ``s`` = ``input.npy``);
    * ``pilotnet_sdnn``: ``path``, ``input`` (``(W, H, C, 1)``, fed into
      ``in_layer.neuron.a_in``), ``output`` (``(1, 9)``: the output layer's sigma over the
      first 9 steps, as lava-dl's test reads it);
    * ``ntidigits``: ``path``, ``input`` (``(64, 3000)`` spikes), ``output``
      (``(242, 3000)``: layer 4's spikes, one step later than stock's sink records them;
      lava-dl's own test compares only ``stock[:, -1]`` with ``gt[:, 1]``), ``num_layers``
      5 (stock has no average).
    """
    d = os.path.join(GTS_DIR, name)

    def npy(f):
        return np.load(os.path.join(d, f))

    if name == 'tinynet':
        return dict(path=os.path.join(NETX_TEST_DIR, 'tiny.net'), bias=npy('input_bias.npy'),
                    output=npy('output.npy')[0].transpose([2, 1, 0, 3])[..., 1:])
    if name == 'pilotnet_lif':
        layers = [dict(s=npy('input.npy'))]
        layers += [dict(s=npy(f'conv-{k}.npy'), u=npy(f'conv-{k}-u.npy'),
                        v=npy(f'conv-{k}-v.npy')) for k in range(5)]
        layers += [dict(s=npy(f'fc-{k}.npy'), u=npy(f'fc-{k}-u.npy'), v=npy(f'fc-{k}-v.npy'))
                   for k in range(3)]
        layers += [dict(s=npy('fc-3-s.npy'), u=npy('fc-3-u.npy'), v=npy('fc-3-v.npy'))]
        return dict(path=os.path.join(d, 'network.net'), bias=npy('image.npy'), layers=layers)
    if name == 'pilotnet_sdnn':
        return dict(path=os.path.join(d, 'network.net'), input=npy('input.npy'),
                    output=npy('output.npy'))
    if name == 'ntidigits':
        return dict(path=os.path.join(d, 'ntidigits.net'), input=npy('input.npy'),
                    output=npy('output.npy'), num_layers=5)
    raise ValueError(f"unknown ground truth {name!r}; known: {', '.join(GROUND_TRUTHS)}")
