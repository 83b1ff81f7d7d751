"""Emission: instantiate the Lava process graph of a compiled IR.

Per neuron layer: a synapse (Lava ``Dense``, or ``Conv`` for conv and pool) and
a neuron (``QBLIF``, ``LIFReset``, or Lava's sigma-delta ``SigmaDelta`` / ``Sigma``
with stock NetX's parameters; an SDNN input layer is a ``Delta`` encoder between the
source and the first synapse), plus a ``Thermometer`` in front of the
synapse where the ``binary`` encoding needs lanes. One ``FrameSource`` feeds
the first synapse; each recorded neuron's ``s_out`` (transposed to file order and
flattened) feeds its own ``Recorder`` (a memory-mapped sink: Lava 0.10 cannot
concatenate ports into one sink, and reads Vars back one element at a time). Flatten layers are port reshapes (``transpose([2, 1, 0]).flatten()``,
as NetX). Lava order is ``(W, H, C)``; the file order ``(C, H, W)``.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from compiler.ir import in_message, layers, synaptic_layers


def to_lava(shape) -> tuple:
    return tuple(shape)[::-1]


def _full(value, shape):
    """A scalar, or a file-order array -> Lava-order array of ``shape`` (file order)."""
    if np.ndim(value) == 0:
        return int(value)
    return np.asarray(value).reshape(shape).transpose(*range(len(shape) - 1, -1, -1)).copy()


@dataclass
class Emitted:
    source: object
    total_steps: int
    neurons: dict = field(default_factory=dict)      # layer index -> neuron process
    sinks: dict = field(default_factory=dict)        # layer index -> (Recorder, file, size)
    monitors: dict = field(default_factory=dict)     # (var, index) -> Monitor
    processes: list = field(default_factory=list)


SDNN_SPIKE_EXP = 6   # stock NetX: netx.hdf5.Network(spike_exp=6)
SDNN_STATE_EXP = 6   # stock NetX: fixed in get_neuron_params


def _sdnn_proc(ly):
    """Lava's sigma-delta process of an SDNN layer, exactly as stock NetX builds it."""
    from lava.proc.sdn.process import ActivationMode, Delta, Sigma, SigmaDelta
    n, shape = ly.neuron, to_lava(ly.shape)
    if ly.proc == "Sigma":
        return Sigma(shape=shape)          # Sigma and Delta take no name
    if ly.proc == "Delta":
        return Delta(shape=shape, vth=int(n.vth), spike_exp=SDNN_SPIKE_EXP,
                     state_exp=SDNN_STATE_EXP)
    bias = _full(n.bias_mant, ly.shape)
    if np.ndim(bias):
        bias = bias.astype(np.int32)
    return SigmaDelta(shape=shape, vth=int(n.vth), bias=bias, act_mode=ActivationMode.RELU,
                      cum_error=False, spike_exp=SDNN_SPIKE_EXP, state_exp=SDNN_STATE_EXP,
                      name=f"layer{ly.index}_sigmadelta")


def _neuron_proc(ly, steps):
    from lava.proc.lif.process import LIFReset
    from qblif_lava.process import QBLIF
    if ly.neuron.kind == "SDNN":
        return _sdnn_proc(ly)
    n, shape = ly.neuron, to_lava(ly.shape)
    if ly.proc == "LIF":
        return LIFReset(shape=shape, du=n.du, dv=n.dv, vth=int(n.vth),
                        bias_mant=_full(n.bias_mant, ly.shape), bias_exp=n.bias_exp,
                        reset_interval=steps, reset_offset=ly.reset_offset,
                        name=f"layer{ly.index}_lif")
    return QBLIF(shape=shape, du=n.du, dv=n.dv, vth=_full(n.vth, ly.shape),
                 bias_mant=_full(n.bias_mant, ly.shape), bias_exp=n.bias_exp,
                 max_burst=n.max_burst, reset_mode=n.reset_mode, reset_interval=steps,
                 reset_offset=ly.reset_offset, name=f"layer{ly.index}_qblif")


def _synapse_proc(ly, msg):
    """Lava ``Dense`` / ``Conv`` of ``ly``'s :class:`compiler.ir.Synapse`, receiving ``msg``."""
    from lava.proc.conv.process import Conv
    from lava.proc.dense.process import Dense
    s = ly.synapse
    if ly.kind == "dense":
        return Dense(weights=s.weight, weight_exp=s.exp, num_weight_bits=s.bits,
                     num_message_bits=msg.wire_bits, name=f"layer{ly.index}_dense")
    in_shape = to_lava(ly.in_shape)
    in_shape = in_shape[:-1] + (in_shape[-1] * msg.lanes,)
    return Conv(weight=s.weight, input_shape=in_shape, stride=ly.stride[::-1],
                padding=ly.padding[::-1], dilation=ly.dilation[::-1], groups=s.groups,
                num_message_bits=msg.wire_bits, name=f"layer{ly.index}_{ly.kind}")


def emit(g, frames_lava: np.ndarray, steps: int, workdir: str, record=None,
         record_uv: bool = False) -> Emitted:
    """Build the process graph for ``frames_lava`` (ints ``(samples, *Lava input shape)``).

    record: layer indices whose counts are recorded (None: every neuron layer), each into
    a file in ``workdir`` (see :mod:`compiler.procs.recorder`).
    """
    import os

    from compiler.procs.recorder import Recorder
    from compiler.procs.recorder.process import create_recording
    from compiler.procs.source import FrameSource
    from compiler.procs.thermometer import Thermometer

    samples = frames_lava.shape[0]
    total = samples * steps + g.graph["depth"]
    first = synaptic_layers(g)[0]
    encoder = layers(g)[0] if layers(g)[0].proc == "Delta" else None
    src = FrameSource(frames=frames_lava, steps=steps,
                      lanes=1 if encoder is not None else in_message(g, first.index).lanes,
                      name="input")
    em = Emitted(source=src, total_steps=total, processes=[src])
    port, lanes_ready = src.s_out, True   # current output port; True: already in lanes

    def record_out(ly, neu):
        out = neu.s_out
        if record is None or ly.index in record:
            path = os.path.join(workdir, f"layer{ly.index}.i32")
            create_recording(path, ly.size, total)
            sink = Recorder(size=ly.size, steps=total, path=path, name=f"layer{ly.index}_record")
            (out.transpose([2, 1, 0]).flatten() if len(ly.shape) == 3 else out).connect(sink.a_in)
            em.sinks[ly.index] = (sink, path, ly.size)
            em.processes.append(sink)

    for ly in layers(g):
        if ly is encoder:
            neu = _neuron_proc(ly, steps)
            port.connect(neu.a_in)
            em.processes.append(neu)
            em.neurons[ly.index] = neu
            record_out(ly, neu)
            port, lanes_ready = neu.s_out, False
            continue
        if ly.kind == "input":
            continue
        if ly.kind == "flatten":
            if len(ly.in_shape) == 3:
                port = port.transpose([2, 1, 0]).flatten()
            continue
        msg = in_message(g, ly.index)
        lanes = msg.lanes
        if lanes > 1 and not lanes_ready:
            th = Thermometer(shape=port.shape, lanes=lanes, name=f"layer{ly.index}_lanes")
            port.connect(th.s_in)
            port = th.s_out
            em.processes.append(th)
        syn = _synapse_proc(ly, msg)
        neu = _neuron_proc(ly, steps)
        port.connect(syn.s_in)
        syn.a_out.connect(neu.a_in)
        em.processes += [syn, neu]
        em.neurons[ly.index] = neu
        record_out(ly, neu)
        port, lanes_ready = neu.s_out, False
        if record_uv and ly.neuron.kind != "SDNN":   # sigma-delta has no u, v
            from lava.proc.monitor.process import Monitor
            for var in ("u", "v"):
                mon = Monitor()
                mon.probe(getattr(neu, var), total)
                em.monitors[(var, ly.index)] = mon
                em.processes.append(mon)
    return em
