"""Emission: instantiate the Lava process graph of a compiled IR.

Per neuron layer: a synapse (Lava ``Dense``; ``DelayDense`` for per-input delays; ``Conv``
for conv and pool) and a neuron (``QBLIF``, ``LIF``/``LIFReset``, or Lava's sigma-delta
``SigmaDelta`` / ``Sigma`` with stock NetX's parameters), plus a ``Thermometer`` in front of
the synapse where the ``binary`` encoding needs lanes, a ``DelayLine`` between synapse and
neuron for per-output-neuron axonal delays (after the neuron, on its spikes, for a
``dense_rec`` layer: lava-dl's output delay; docs/coverage.md), and a second ``Dense`` from the neuron onto
itself for a recurrent (``dense_rec``) layer. The source is a ``FrameSource`` (frames or
streams), an SDNN input layer a ``Delta`` encoder behind it, or, for an input layer with a
CUBA neuron, that neuron itself (``BiasNeuron``, driven by its bias). Each recorded
neuron's ``s_out`` (transposed to file order and flattened) feeds its own ``Recorder`` (a
memory-mapped sink: Lava 0.10 cannot concatenate ports into one sink, and reads Vars back
one element at a time). Flatten layers are port reshapes (``transpose([2, 1, 0]).flatten()``,
as NetX); average layers are read out on the host. Lava order is ``(W, H, C)``; the file
order ``(C, H, W)``.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from qblif.core.constants import NETX_SDNN_EXP
from qblif.ir import in_message, layers, output_delays, per_synapse_delays, synaptic_layers


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
    states: dict = field(default_factory=dict)       # (var, index) -> (file, Lava shape)
    processes: list = field(default_factory=list)


#: the sigma-delta state Vars ``run(record=...)`` can record, as Lava's processes hold them:
#: Sigma has ``sigma``; Delta and SigmaDelta ``sigma``, ``act`` (the activation) and
#: ``residue`` (the delta not yet sent), all in units of 2^-6 (``state_exp = 6``)
SDNN_STATES = ("sigma", "act", "residue")
SDNN_SPIKE_EXP = SDNN_STATE_EXP = NETX_SDNN_EXP   # stock NetX: spike_exp = state_exp = 6


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


SAMPLE_LANE_NEURONS = ("QBLIF", "LIF", "GradedLIF")   # neuron processes lanes run
SAMPLE_LANE_KINDS = ("input", "dense", "conv", "pool", "flatten", "average")
STOCK_CONV_MAX_GROUPS = 127       # Lava's own Conv models keep ``groups`` in an int8 Var
MAX_LANED_DENSE = 2 ** 25         # entries of a block-diagonal laned Dense weight (stock models)


def check_sample_lanes(g, lanes: int, stock_models: bool = False) -> None:
    """Raise ValueError naming the first feature of ``g`` that ``lanes`` sample lanes do not
    cover (lanes > 1 runs dense/conv/pool/flatten layers of QB-LIF or CUBA neurons, with
    per-output axonal delays (a ``DelayLine``, delays tiled per lane) or recurrent weights
    (laned like a dense synapse), and a bias-driven input layer, without per-synapse
    delays; ``docs/fast_execution.md``),
    or with ``stock_models`` (Lava's own models: a laned dense layer is then Lava's ``Dense``
    with the block-diagonal weight) a dense weight past ``MAX_LANED_DENSE`` entries or a conv
    or pool layer past ``STOCK_CONV_MAX_GROUPS`` groups."""
    if g.graph.get("stateful"):
        raise ValueError("lanes > 1: this network is stateful (SDNN layers are never reset, "
                         "so each sample starts from the previous sample's state, which "
                         "samples side by side cannot reproduce); run with lanes=1")
    for ly in layers(g):
        where = f"lanes > 1: layer {ly.index} ({ly.kind})"
        if ly.kind not in SAMPLE_LANE_KINDS:
            raise ValueError(f"{where}: layer kind {ly.kind!r} is not supported with lanes; "
                             "run with lanes=1")
        if ly.kind == "input":
            if ly.neuron is not None and ly.proc != "BiasNeuron":
                raise ValueError(f"{where}: an input layer with a neuron ({ly.proc}) is not "
                                 "supported with lanes; run with lanes=1")
            continue
        if ly.kind in ("flatten", "average"):
            continue
        if ly.proc in ("ATRLIF", "RF", "RF_IZ"):
            raise ValueError(f"{where}: neuron process {ly.proc} has no state reset (it runs "
                             "with reset='none' only, where each sample starts from the "
                             "previous sample's state, which samples side by side cannot "
                             "reproduce); run with lanes=1")
        if ly.proc not in SAMPLE_LANE_NEURONS:
            raise ValueError(f"{where}: neuron process {ly.proc} is not supported with lanes "
                             f"(only {', '.join(SAMPLE_LANE_NEURONS)}); run with lanes=1")
        s = ly.synapse
        per_synapse = s.delay is not None and output_delays(ly) is None
        for what, value in (("per-synapse delays (Lava DelayDense)", per_synapse or None),
                            ("complex (imaginary) weights", s.imag)):
            if value is not None:
                raise ValueError(f"{where}: {what} are not supported with lanes; "
                                 "run with lanes=1")
        size = max(s.weight.size, 0 if s.weight_rec is None else s.weight_rec.size)
        if stock_models and ly.kind == "dense" and size * lanes ** 2 > MAX_LANED_DENSE:
            most = int((MAX_LANED_DENSE // size) ** 0.5)
            raise ValueError(f"{where}: the block-diagonal weights of {lanes} lanes have "
                             f"{size * lanes ** 2:,} entries (limit "
                             f"{MAX_LANED_DENSE:,} with models='stock'); use "
                             f"models='fast' or lanes <= {most}")
        if stock_models and ly.kind != "dense" and s.groups * lanes > STOCK_CONV_MAX_GROUPS:
            raise ValueError(f"{where}: {s.groups} groups x {lanes} lanes exceeds the "
                             f"{STOCK_CONV_MAX_GROUPS} groups of Lava's stock Conv models; "
                             "use models='fast' or fewer lanes")


def _tile_lanes(value, sample_lanes: int):
    """A scalar unchanged, or a Lava-order array tiled ``sample_lanes`` times along its last
    axis (lane-outer: index ``l*C + c``)."""
    if sample_lanes == 1 or np.ndim(value) == 0:
        return value
    return np.concatenate([value] * sample_lanes, axis=-1)


def _neuron_proc(ly, sched, sample_lanes: int = 1):
    """The neuron process of ``ly``; sched: ``(reset_interval, reset_offset)`` or None.
    sample_lanes: L samples side by side, lane-outer on the last Lava axis (QBLIF, LIF)."""
    from lava.proc.lif.process import LIF, LIFReset
    from qblif.lava.procs.qblif import QBLIF
    if ly.neuron.kind == "SDNN":
        return _sdnn_proc(ly)
    n, shape = ly.neuron, to_lava(ly.shape)
    if sample_lanes > 1:
        from qblif.lava.procs.source.process import lane_shape
        shape = lane_shape(shape, sample_lanes)

    def full(value, file_shape):   # Lava order, tiled per sample lane
        return _tile_lanes(_full(value, file_shape), sample_lanes)
    interval, offset = sched if sched is not None else (None, 0)
    if ly.proc == "ATRLIF":
        return _atrlif_proc(ly, interval)
    if ly.proc in ("RF", "RF_IZ"):
        return _rf_proc(ly, interval)
    if ly.proc == "GradedLIF":
        from qblif.lava.procs.graded_lif import GradedLIF
        return GradedLIF(shape=shape, du=n.du, dv=n.dv, vth=full(n.vth, ly.shape),
                         bias_mant=full(n.bias_mant, ly.shape), bias_exp=n.bias_exp,
                         reset_interval=interval, reset_offset=offset,
                         name=f"layer{ly.index}_graded_lif")
    if ly.proc == "LIF":
        kw = dict(shape=shape, du=n.du, dv=n.dv, vth=int(n.vth),
                  bias_mant=full(n.bias_mant, ly.shape), bias_exp=n.bias_exp,
                  name=f"layer{ly.index}_lif")
        if interval is None:
            return LIF(**kw)
        return LIFReset(reset_interval=interval, reset_offset=offset, **kw)
    return QBLIF(shape=shape, du=n.du, dv=n.dv, vth=full(n.vth, ly.shape),
                 bias_mant=full(n.bias_mant, ly.shape), bias_exp=n.bias_exp,
                 max_burst=n.max_burst, reset_mode=n.reset_mode, reset_interval=interval,
                 reset_offset=offset, name=f"layer{ly.index}_qblif")


def _atrlif_proc(ly, interval):
    """Lava's ATRLIF for an ALIF layer: decays as fractions of 4096 (exact in float: the
    model multiplies them back by 4096), ``theta_0 = vThMant``, ``theta_step = vThStep``."""
    from lava.proc.atrlif.process import ATRLIF
    if interval is not None:
        raise ValueError(f"layer {ly.index}: ALIF runs on Lava's ATRLIF, which has no state "
                         "reset: run with reset='none'")
    n, a = ly.neuron, ly.neuron.params
    bias = _full(n.bias_mant, ly.shape)
    return ATRLIF(shape=to_lava(ly.shape), delta_i=n.du / 4096, delta_v=n.dv / 4096,
                  delta_theta=a["thDecay"] / 4096, delta_r=a["refDecay"] / 4096,
                  theta_0=int(n.vth), theta_step=a["vThStep"],
                  bias_mant=bias if np.ndim(bias) == 0 else bias.astype(np.int16),
                  bias_exp=n.bias_exp, name=f"layer{ly.index}_atrlif")


def _rf_proc(ly, interval):
    """Lava's RF for a resonate-and-fire layer, exactly as stock NetX builds it."""
    from lava.proc.rf.process import RF
    from lava.proc.rf_iz.process import RF_IZ
    from qblif.core.numeric import rf_process_params
    if interval is not None:
        raise ValueError(f"layer {ly.index}: resonate-and-fire runs on Lava's RF, which has "
                         "no state reset: run with reset='none'")
    period, alpha = rf_process_params(ly.neuron.params["sinDecay"], ly.neuron.params["cosDecay"])
    proc = RF_IZ if ly.proc == "RF_IZ" else RF
    return proc(shape=to_lava(ly.shape), period=period, alpha=alpha, state_exp=6,
                decay_bits=12, vth=int(ly.neuron.vth), name=f"layer{ly.index}_rf")


def _dense_proc(weight, s, wire_bits: int, sample_lanes: int, stock_models: bool, name: str):
    """A dense synapse of ``weight`` ``(out, in)`` (exponent, weight bits of Synapse ``s``)
    for ``sample_lanes`` L: Lava ``Dense`` (L = 1), a ``LanedDense`` (L > 1), or with
    ``stock_models`` Lava's ``Dense`` with the block-diagonal ``(L*out, L*in)`` weight."""
    from lava.proc.dense.process import Dense
    if sample_lanes > 1 and not stock_models:
        from qblif.lava.procs.laned_dense import LanedDense
        return LanedDense(weights=weight, lanes=sample_lanes, weight_exp=s.exp,
                          num_weight_bits=s.bits, num_message_bits=wire_bits, name=name)
    if sample_lanes > 1:
        n_out, n_in = weight.shape
        block = np.zeros((sample_lanes * n_out, sample_lanes * n_in), weight.dtype)
        for lane in range(sample_lanes):
            block[lane * n_out:(lane + 1) * n_out, lane * n_in:(lane + 1) * n_in] = weight
        weight = block
    return Dense(weights=weight, weight_exp=s.exp, num_weight_bits=s.bits,
                 num_message_bits=wire_bits, name=name)


def _synapse_proc(ly, msg, sample_lanes: int = 1, stock_models: bool = False):
    """Lava ``Dense`` / ``Conv`` of ``ly``'s :class:`qblif.ir.Synapse`, receiving ``msg``.

    sample_lanes L > 1: a dense layer is a :class:`qblif.lava.procs.laned_dense.LanedDense`
    (the ``(out, in)`` weight once; lane l reads inputs ``l*in ..`` and writes outputs
    ``l*out ..``, exactly Dense per lane), or with ``stock_models`` Lava's ``Dense`` with the
    block-diagonal ``(L*out, L*in)`` weight (the same sums); a conv/pool layer gets ``groups*L`` groups and its weight tiled L times along the
    output channels (group ``l*G + g`` reads lane l's channels of group g)."""
    from lava.proc.conv.process import Conv
    from lava.proc.dense.process import DelayDense
    s = ly.synapse
    if ly.kind == "dense" and per_synapse_delays(s.delay):   # as stock: Lava's DelayDense
        return DelayDense(weights=s.weight, delays=s.delay.astype(int), weight_exp=s.exp,
                          num_weight_bits=s.bits, num_message_bits=msg.wire_bits,
                          name=f"layer{ly.index}_delaydense")
    if ly.kind == "dense":
        return _dense_proc(s.weight, s, msg.wire_bits, sample_lanes, stock_models,
                           f"layer{ly.index}_dense")
    in_shape = to_lava(ly.in_shape)
    in_shape = in_shape[:-1] + (in_shape[-1] * msg.lanes * sample_lanes,)
    weight = s.weight if sample_lanes == 1 else np.concatenate([s.weight] * sample_lanes, 0)
    return Conv(weight=weight, input_shape=in_shape, stride=ly.stride[::-1],
                padding=ly.padding[::-1], dilation=ly.dilation[::-1],
                groups=s.groups * sample_lanes,
                num_message_bits=msg.wire_bits, name=f"layer{ly.index}_{ly.kind}")


def emit(g, frames_lava: np.ndarray, steps: int, workdir: str, record=None,
         record_uv: bool = False, *, stream: bool = False, reset: str = "sample",
         reset_interval=None, reset_offset: int = 0, sample_lanes: int = 1,
         stock_models: bool = False, states: tuple = ()) -> Emitted:
    """Build the process graph for ``frames_lava`` (ints ``(samples, *Lava input shape)``,
    or with ``stream`` ``(samples, T_in, *Lava input shape)``).

    record: layer indices whose counts are recorded (None: every neuron layer), each into
    a file in ``workdir`` (see :mod:`qblif.lava.procs.recorder`); record_uv: u and v of every
    neuron layer that has them, states: the :data:`SDNN_STATES` of the recorded SDNN layers
    (``em.states[(name, index)] = (file, Lava shape)``). reset, reset_interval,
    reset_offset: :func:`qblif.schedule.reset_schedule`.

    sample_lanes L > 1 (:func:`check_sample_lanes` must pass): ``frames_lava`` is
    ``(B, *Lava input shape with its last axis x L)``, batch b holding sample ``b*L + l`` in
    lane l (lane-outer on the last axis); every process carries the L lanes the same way,
    and each Recorder records ``L * size`` values per step (lane l at ``l*size ..``).
    Laned dense layers are ``LanedDense`` processes, or with ``stock_models`` (the in-run
    baseline of Lava's own models) Lava ``Dense`` with block-diagonal weights.
    """
    import os

    from qblif.schedule import reset_schedule
    from qblif.lava.procs.bias_neuron import BiasNeuron
    from qblif.lava.procs.delay_line import DelayLine
    from qblif.lava.procs.recorder import Recorder
    from qblif.lava.procs.recorder.process import StateRecorder, create_recording
    from qblif.lava.procs.source import FrameSource
    from qblif.lava.procs.thermometer import Thermometer
    from lava.proc.dense.process import Dense

    samples = frames_lava.shape[0]
    total = samples * steps + g.graph["depth"]
    first = synaptic_layers(g)[0]
    head = layers(g)[0]

    def sched(ly):
        return reset_schedule(g, ly, steps, reset, reset_interval, reset_offset)

    if head.proc == "BiasNeuron":   # the frames drive the input neuron's bias
        n = head.neuron
        interval, offset = sched(head) or (None, 0)
        src = BiasNeuron(frames=frames_lava, steps=steps, du=n.du, dv=n.dv,
                         vth=_tile_lanes(_full(n.vth, head.shape), sample_lanes),
                         stream=stream, reset_interval=interval,
                         reset_offset=offset, name=f"layer{head.index}_bias_neuron")
    else:
        lanes = 1 if head.proc == "Delta" else in_message(g, first.index).lanes
        src = FrameSource(frames=frames_lava, steps=steps, lanes=lanes, stream=stream,
                          name="input")
    em = Emitted(source=src, total_steps=total, processes=[src])
    port, lanes_ready = src.s_out, True   # current output port; True: already in lanes

    def record_out(ly, neu, out=None):
        """Record ``out`` (default the neuron's spikes) and, with record_uv, u and v."""
        out = neu.s_out if out is None else out
        if record is None or ly.index in record:
            path = os.path.join(workdir, f"layer{ly.index}.i32")
            create_recording(path, ly.size * sample_lanes, total)
            sink = Recorder(size=ly.size * sample_lanes, steps=total, path=path, name=f"layer{ly.index}_record")
            (out.transpose([2, 1, 0]).flatten() if len(ly.shape) == 3 else out).connect(sink.a_in)
            em.sinks[ly.index] = (sink, path, ly.size * sample_lanes)
            em.processes.append(sink)
        names = [] if ly.neuron.kind in ("SDNN", "RF") or not record_uv else ["u", "v"]
        if ly.neuron.kind == "SDNN" and (record is None or ly.index in record):
            names = [s for s in states if hasattr(neu, s)]        # Sigma: sigma only
        if names:
            lava_vars = ["i" if (v == "u" and ly.proc == "ATRLIF") else v for v in names]
            shape = tuple(getattr(neu, lava_vars[0]).shape)
            paths = [os.path.join(workdir, f"layer{ly.index}_{var}.i32") for var in names]
            for var, path in zip(names, paths):
                create_recording(path, int(np.prod(shape)), total)
                em.states[(var, ly.index)] = (path, shape)
            if ly.proc == "QBLIF" and not stock_models:   # the lean model writes them itself
                neu.record_uv_into(*paths, total)
                return
            rec = StateRecorder(shape=shape, steps=total, paths=paths,
                                name=f"layer{ly.index}_state_record")
            rec.probe(*(getattr(neu, v) for v in lava_vars))
            em.processes.append(rec)

    for ly in layers(g):
        if ly is head and ly.proc == "BiasNeuron":
            em.neurons[ly.index] = src
            record_out(ly, src)
            port, lanes_ready = src.s_out, False
            continue
        if ly is head and ly.proc == "Delta":
            neu = _neuron_proc(ly, None)
            port.connect(neu.a_in)
            em.processes.append(neu)
            em.neurons[ly.index] = neu
            record_out(ly, neu)
            port, lanes_ready = neu.s_out, False
            continue
        if ly.kind in ("input", "average"):   # average: read out on the host (runtime)
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
        syn = _synapse_proc(ly, msg, sample_lanes, stock_models)
        neu = _neuron_proc(ly, sched(ly), sample_lanes)
        port.connect(syn.s_in)
        a_out = syn.a_out
        em.processes += [syn, neu]
        if ly.synapse.imag is not None:   # stock's ComplexDense: real and imaginary synapses
            im = ly.synapse.imag
            syn_i = Dense(weights=im.weight, weight_exp=im.exp, num_weight_bits=im.bits,
                          num_message_bits=msg.wire_bits, name=f"layer{ly.index}_dense_imag")
            port.connect(syn_i.s_in)
            syn_i.a_out.connect(neu.a_imag_in)
            a_out.connect(neu.a_real_in)
            em.processes.append(syn_i)
            em.neurons[ly.index] = neu
            record_out(ly, neu)
            port, lanes_ready = neu.s_out, False
            continue
        line = None
        if output_delays(ly) is not None:   # (stock NetX drops conv delays)
            # per-sample mode: the line forgets with its neuron (nothing arrives late from
            # the previous sample); stock's modes (none, netx) keep it, as DelayDense does
            clear = sched(ly) if reset == "sample" else None
            interval, offset = clear or (0, 0)
            line = DelayLine(delays=_tile_lanes(_full(output_delays(ly), ly.shape),
                                                sample_lanes),
                             reset_interval=interval, reset_offset=offset,
                             name=f"layer{ly.index}_delay")
            em.processes.append(line)
            if ly.synapse.weight_rec is None:   # the layer's synaptic input (stock's reading)
                a_out.connect(line.a_in)
                a_out = line.a_out
        a_out.connect(neu.a_in)
        if ly.synapse.weight_rec is not None:   # dense_rec: the layer's spikes onto itself
            own = g.edges[ly.index, ly.index]["message"]
            rec_port = neu.s_out
            if own.lanes > 1:
                th = Thermometer(shape=rec_port.shape, lanes=own.lanes,
                                 name=f"layer{ly.index}_rec_lanes")
                rec_port.connect(th.s_in)
                rec_port = th.s_out
                em.processes.append(th)
            rec = _dense_proc(ly.synapse.weight_rec, ly.synapse, own.wire_bits, sample_lanes,
                              stock_models, f"layer{ly.index}_dense_rec")
            rec_port.connect(rec.s_in)
            em.processes.append(rec)
            fb = rec.a_out
            if reset == "sample" and sched(ly) is not None:
                # each sample starts from zero state: the gate drops the feedback of the
                # previous sample's last step on the neuron's reset step
                interval, offset = sched(ly)
                gate = DelayLine(delays=_tile_lanes(np.zeros(to_lava(ly.shape), np.int32),
                                                    sample_lanes), reset_interval=interval,
                                 reset_offset=offset, drop_on_reset=True,
                                 name=f"layer{ly.index}_rec_gate")
                fb.connect(gate.a_in)
                fb = gate.a_out
                em.processes.append(gate)
            fb.connect(neu.a_in)          # Lava sums both inputs of a_in
        em.neurons[ly.index] = neu
        if line is not None and ly.synapse.weight_rec is not None:
            # dense_rec: lava-dl's output delay (the block's spikes, after the neuron; the
            # feedback above is not delayed): the delayed spikes are the layer's output
            neu.s_out.connect(line.a_in)
            record_out(ly, neu, line.a_out)
            port, lanes_ready = line.a_out, False
            continue
        record_out(ly, neu)
        port, lanes_ready = neu.s_out, False
    return em
