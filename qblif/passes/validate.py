"""Validation (a pure check) and normalization (fills defaults) of the read graph.

``validate`` rejects every malformed, inconsistent or unsupported layer and changes
nothing; ``normalize`` then writes the values the later passes use (per-neuron
threshold and bias broadcasts, ``bias_exp``, pool strides, the burst fields of CUBA and
SDNN neurons). Both derive those values with the same functions (:func:`neuron_values`),
so what is checked is what is written. Ranges are those of spec section 1
(``qblif.core.params``); each failure is one :class:`CompileError` naming the layer index
and the key.
"""
from __future__ import annotations

import copy

import numpy as np

from qblif.core.constants import NETX_BIAS_EXP
from qblif.core.errors import CompileError
from qblif.ir import LAYER_KINDS, Neuron, check_graph, layers, producer
from qblif.passes.declare import declare
from qblif.core import params as P
from qblif.netx.check import ModelFileError, check_meta, check_neuron

UNSUPPORTED_NEURONS = {
    "ADRF_PHASE": "adaptive resonate-and-fire neurons are unsupported (stock NetX has no "
                  "mapping and Lava 0.10 no process for them)",
}
UNSUPPORTED_LAYERS = {
    "dense_comp": "dense_comp layers are unsupported (stock NetX fails on them too: it calls "
                  "a create_complex_dense it does not have); write complex weights on a "
                  "dense layer",
    "concat": "concat layers are unsupported (several inputs per layer are not yet emitted; "
              "stock NetX has none either)",
    "convt": "transposed convolutions are unsupported (stock NetX has none either)",
    "unpool": "unpool layers are unsupported (stock NetX has none either)",
}
MAX_INPUT_BITS = P.INPUT_BITS_RANGE[1]
# SDNN (emitted as Lava's SigmaDelta / Delta / Sigma with spike_exp = state_exp = 6, as
# stock NetX): vThMant is a scalar (the process's vth Var has shape (1,)); 17-bit like
# the CUBA threshold, 0 allowed (every change is sent). Messages: Lava's ports carry 24 bits.
SDNN_VTH_RANGE = (0, P.VTH_RANGE[1])
SDNN_MESSAGE_BITS = (1, 24)
SDNN_ACTIVATIONS = ("relu",)
FOREIGN_SDNN_KEYS = ("iDecay", "vDecay", "maxBurst", "resetMode", "refDelay", "gradedSpike")
INPUT_TRANSFORM = {"weight": 64, "bias": 0}   # stock NetX create_input defaults
MAX_NEURONS = 2 ** 22   # refuse absurd shapes before allocating anything


def _shared(fn, *args):
    """A check of :mod:`qblif.netx.check` (shared with ``load_network``), as CompileError."""
    try:
        return fn(*args)
    except ModelFileError as exc:
        raise CompileError.of(exc) from None


def _check(fn, layer, key, *args, **kw):
    try:
        return fn(*args, **kw)
    except ValueError as exc:
        raise CompileError(str(exc), layer, key) from None


def _per_channel(value, layer, key, shape, lo, hi):
    """A scalar, a (C,) per-channel array (C = shape[0]) or a full-shape array -> int or full array."""
    arr = np.asarray(value)
    if arr.size == 1:
        return int(_check(P.check_int_range, layer, key, key, arr.reshape(-1)[0], lo, hi))
    if arr.ndim == 1 and arr.shape[0] == shape[0] and len(shape) > 1:
        arr = np.broadcast_to(arr.reshape((-1,) + (1,) * (len(shape) - 1)), shape)
    elif arr.shape == (shape[0],) or arr.size == int(np.prod(shape)):
        arr = arr.reshape(shape)
    else:
        raise CompileError(f"shape {arr.shape} is neither a scalar, per-channel ({shape[0]},) "
                           f"nor per-neuron {tuple(shape)}", layer, key)
    return _check(P.check_int_range, layer, key, key, arr, lo, hi, shape=shape).copy()


def _sdnn_values(ly) -> dict:
    """A sigma-delta neuron group, as stock NetX reads it (see ``qblif.ir.from_netx``)."""
    n, i = ly.neuron, ly.index
    foreign = sorted(k for k in n.raw if k in FOREIGN_SDNN_KEYS)
    if foreign:
        raise CompileError(f"type SDNN, but the group carries {', '.join(foreign)} (keys of "
                           "a QBLIF/CUBA neuron): type and parameters disagree", i, "neuron/type")
    if not SDNN_MESSAGE_BITS[0] <= n.message_bits <= SDNN_MESSAGE_BITS[1]:
        raise CompileError(f"messageBits={n.message_bits} is out of range "
                           f"{list(SDNN_MESSAGE_BITS)} (graded sigma-delta messages)",
                           i, "neuron/messageBits")
    if n.activation not in SDNN_ACTIVATIONS:
        raise CompileError(f"activation {n.activation!r} is unsupported (Lava's SigmaDelta "
                           "and stock NetX implement relu only)", i, "neuron/activation")
    for k in ("cum_error", "cumError"):
        if n.raw.get(k):
            raise CompileError("cumulative-error sigma-delta is unsupported (stock NetX "
                               "ignores the key; expected 0 or absent)", i, f"neuron/{k}")
    out = dict(max_burst=1, reset_mode="zero")
    if n.sigma_output:
        if not n.raw["sigma_output"]:
            raise CompileError("sigma_output=0 is ambiguous: stock NetX emits a Sigma "
                               "whenever the key is present (drop it for a SigmaDelta)",
                               i, "neuron/sigma_output")
        if ly.kind == "input":
            raise CompileError("an input layer cannot be a sigma output", i,
                               "neuron/sigma_output")
        if ly.bias is not None:
            raise CompileError("a sigma output (Lava Sigma) has no bias", i, "bias")
        out["vth"] = 0
    else:
        vth = np.asarray(n.vth)
        if vth.size != 1:
            raise CompileError(f"expected a scalar threshold, found shape {vth.shape} (Lava's "
                               "SigmaDelta has one vth per layer)", i, "neuron/vThMant")
        out["vth"] = int(_check(P.check_int_range, i, "neuron/vThMant", "vThMant",
                                vth.reshape(-1)[0], *SDNN_VTH_RANGE))
    return out


def _check_input(ly):
    """An input layer with a neuron: an SDNN delta encoder (Lava ``Delta``, fed the frames as
    events), or a CUBA/LOIHI neuron fed the frames as its bias (stock NetX's convention;
    the file's transform ``weight``/``bias`` is kept for ``run(input_transform=True)``)."""
    i = ly.index
    if ly.neuron.kind == "CUBA":
        for key in INPUT_TRANSFORM:
            value = getattr(ly, key)
            if value is not None and np.asarray(value).size != 1:
                raise CompileError(f"expected a scalar input transform, found shape "
                                   f"{np.shape(value)}", i, key)
        return
    if ly.neuron.kind != "SDNN":
        raise CompileError(f"input layers with a {ly.neuron.kind} neuron are unsupported "
                           "(inputs are direct graded frames, a CUBA/LOIHI neuron driven by "
                           "its bias, or an SDNN delta encoder)", i, "neuron")
    for key, default in INPUT_TRANSFORM.items():
        value = getattr(ly, key)
        if value is not None and (np.asarray(value).size != 1
                                  or float(np.asarray(value).reshape(-1)[0]) != default):
            raise CompileError(f"an input transform {key} other than {default} is unsupported "
                               "for an SDNN input (stock NetX reads it but never applies it)",
                               i, key)


def _spiking_values(ly) -> dict:
    n, i = ly.neuron, ly.index
    if n.kind in UNSUPPORTED_NEURONS:
        raise CompileError(UNSUPPORTED_NEURONS[n.kind], i, "neuron/type")
    if n.kind not in ("QBLIF", "CUBA", "ALIF", "RF"):
        raise CompileError(f"unknown neuron type {n.kind!r} (expected QBLIF, CUBA, LOIHI, "
                           "ALIF, RF_PHASE, SDNN)", i, "neuron/type")
    if n.ref_delay not in (0, 1):
        raise CompileError(f"refDelay={n.ref_delay} is unsupported (refractory periods "
                           "are not modelled; expected 0 or 1)", i, "neuron/refDelay")
    if n.kind == "CUBA":
        return _cuba_values(ly)
    if n.kind == "ALIF":
        return _alif_values(ly)
    if n.kind == "RF":
        return _rf_values(ly)
    _shared(check_neuron, i, n.kind, n.du + 1, n.dv, n.max_burst, n.reset_mode, n.ref_delay,
            n.message_bits)
    return dict(vth=_per_channel(n.vth, i, "neuron/vThMant", ly.shape, *P.VTH_RANGE))


def _cuba_values(ly) -> dict:
    """A CUBA/LOIHI neuron: Lava LIF's ranges (``params.LIF_*``) with a scalar threshold;
    a per-neuron threshold runs on the QB-LIF process (K = 1) and needs its ranges."""
    n, i = ly.neuron, ly.index
    if n.raw.get("gradedSpike") and ly.kind == "input":
        raise CompileError("a graded-spike input neuron is unsupported", i,
                           "neuron/gradedSpike")
    if n.message_bits not in (None, 0) and not n.raw.get("gradedSpike"):
        raise CompileError(f"messageBits={n.message_bits} is unsupported for CUBA "
                           "(binary spikes, expected 0)", i, "neuron/messageBits")
    _check(P.check_int_range, i, "neuron/iDecay", "iDecay", n.du + 1, *P.LIF_IDECAY_RANGE)
    _check(P.check_int_range, i, "neuron/vDecay", "vDecay", n.dv, *P.LIF_VDECAY_RANGE)
    if np.asarray(n.vth).size == 1:
        vth = _per_channel(n.vth, i, "neuron/vThMant", ly.shape, *P.LIF_VTH_RANGE)
    else:
        for key, val, lo, hi in (("iDecay", n.du + 1, 1, P.DECAY_RANGE[1] + 1),
                                 ("vDecay", n.dv, *P.DECAY_RANGE)):
            if not lo <= val <= hi:
                raise CompileError(f"{key}={val} needs a scalar vThMant (Lava's LIF); a "
                                   "per-neuron threshold runs on the QB-LIF process, range "
                                   f"[{lo}, {hi}]", i, f"neuron/{key}")
        vth = _per_channel(n.vth, i, "neuron/vThMant", ly.shape, *P.VTH_RANGE)
    return dict(vth=vth, max_burst=1, reset_mode="zero")


def _alif_values(ly) -> dict:
    """An ALIF neuron (run as Lava's ATRLIF, whose parameters are scalars): 12-bit decays,
    a scalar threshold and threshold step (17-bit mantissas), binary spikes."""
    n, i = ly.neuron, ly.index
    if ly.kind == "input":
        raise CompileError("an input layer cannot be ALIF", i, "neuron")
    if n.raw.get("gradedSpike"):
        raise CompileError("graded-spike ALIF neurons are unsupported", i, "neuron/gradedSpike")
    _check(P.check_int_range, i, "neuron/iDecay", "iDecay", n.du + 1, 1, P.DECAY_RANGE[1] + 1)
    _check(P.check_int_range, i, "neuron/vDecay", "vDecay", n.dv, *P.DECAY_RANGE)
    for k in ("thDecay", "refDecay"):
        _check(P.check_int_range, i, f"neuron/{k}", k, n.params[k], *P.DECAY_RANGE)
    _check(P.check_int_range, i, "neuron/vThStep", "vThStep", n.params["vThStep"], 0,
           P.VTH_RANGE[1])
    if np.asarray(n.vth).size != 1:
        raise CompileError("ALIF needs a scalar threshold (Lava's ATRLIF has one theta_0)", i,
                           "neuron/vThMant")
    vth = _per_channel(n.vth, i, "neuron/vThMant", ly.shape, *P.VTH_RANGE)
    return dict(vth=vth, max_burst=1, reset_mode="zero")


def _rf_values(ly) -> dict:
    """A resonate-and-fire neuron (Lava's RF, as stock NetX builds it) behind complex dense
    weights: scalar threshold, 12-bit sin/cos decays, no bias, binary spikes."""
    n, i = ly.neuron, ly.index
    if ly.kind != "dense" or ly.weight_imag is None:
        raise CompileError("a resonate-and-fire neuron needs complex dense weights "
                           "(weight/real, weight/imag)", i, "neuron/type")
    if ly.bias is not None:
        raise CompileError("a resonate-and-fire layer has no bias (stock NetX ignores it)", i,
                           "bias")
    if np.asarray(n.vth).size != 1:
        raise CompileError("expected a scalar threshold (Lava's RF has one vth)", i,
                           "neuron/vThMant")
    for k in ("sinDecay", "cosDecay"):
        _check(P.check_int_range, i, f"neuron/{k}", k, n.params[k], -4096, 4096)
    if n.params["sinDecay"] == 0 and n.params["cosDecay"] <= 0:
        raise CompileError("sinDecay = 0 with cosDecay <= 0 has no period", i, "neuron/sinDecay")
    vth = _per_channel(n.vth, i, "neuron/vThMant", ly.shape, *P.VTH_RANGE)
    return dict(vth=vth, max_burst=1, reset_mode="zero")


def _delay_values(ly):
    """Axonal delays (steps) as stock NetX reads them: a dense layer's ``delay`` of shape
    ``(out,)`` delays each output neuron's synaptic input, ``(in,)`` each input, a full
    ``(out, in)`` each synapse; a conv layer's ``(C_out,)`` each output channel (stock NetX
    drops conv delays). Returns the full ``(out, in)`` matrix (dense) or an array of the
    layer's shape (conv), int64, or None."""
    d, i = ly.delay, ly.index
    if d is None or not np.any(d):
        return None
    d = np.asarray(d, np.int64)
    if d.min() < 0 or d.max() > P.MAX_AXON_DELAY:
        raise CompileError(f"delays in [{d.min()}, {d.max()}] are out of range "
                           f"[0, {P.MAX_AXON_DELAY}] (stock NetX clamps them silently)",
                           i, "delay")
    if ly.weight_imag is not None:
        raise CompileError("delays on a complex (resonate-and-fire) layer are unsupported "
                           "(stock NetX ignores them)", i, "delay")
    if ly.kind == "dense":
        n_out = int(np.prod(ly.shape))
        w = np.asarray(ly.weight)
        n_in = w.size // n_out if w.size % n_out == 0 else -1
        if d.size == 1:
            return np.full((n_out, n_in), int(d.reshape(-1)[0]), np.int64)
        if d.size == n_out:
            return np.repeat(d.reshape(-1, 1), n_in, axis=1)
        if d.size == n_in:
            return np.repeat(d.reshape(1, -1), n_out, axis=0)
        if d.size == n_out * n_in:
            return d.reshape(n_out, n_in)
    elif ly.kind == "conv":
        if d.size == 1:
            return np.full(ly.shape, int(d.reshape(-1)[0]), np.int64)
        if d.size == ly.shape[0]:
            return np.broadcast_to(d.reshape((-1,) + (1,) * (len(ly.shape) - 1)),
                                   ly.shape).copy()
        if d.size == int(np.prod(ly.shape)):
            return d.reshape(ly.shape)
    else:
        raise CompileError(f"axonal delays on a {ly.kind} layer are unsupported", i, "delay")
    raise CompileError(f"delay of shape {d.shape} fits neither the outputs nor the inputs "
                       f"of the layer", i, "delay")


def implicit_neuron() -> Neuron:
    """The neuron of a dense layer that has none, as stock NetX builds it: a non-leaky
    integrator (CUBA, iDecay 0: u sums the synaptic input; vDecay 4096: v = u + bias) with
    ``vThMant = 1 << 17`` (stock writes ``1 << 18 - 1``), which ``v`` (24 bits) never
    crosses: it never spikes; its output is ``u`` / ``v`` (``record_uv``)."""
    return Neuron(kind="CUBA", du=-1, dv=4096, vth=1 << 17, raw={"implicit": True})


def neuron_values(ly) -> dict:
    """The normalized neuron fields of ``ly`` (raises :class:`CompileError` if invalid):
    ``vth`` (int or per-neuron array), ``max_burst``, ``reset_mode``, and for a layer with a
    bias ``bias_mant`` (int or per-neuron array) and ``bias_exp`` = 6 (NetX scales the bias
    mantissa by 2^6, as the weights)."""
    if ly.neuron is None:
        if ly.kind != "dense":
            return {}
        ly = copy.copy(ly)
        ly.neuron = implicit_neuron()
    if ly.kind == "input":
        _check_input(ly)
    out = _sdnn_values(ly) if ly.neuron.kind == "SDNN" else _spiking_values(ly)
    if ly.bias is not None and ly.kind != "input":
        out["bias_mant"] = _per_channel(ly.bias, ly.index, "bias", ly.shape,
                                        *P.BIAS_MANT_RANGE)
        out["bias_exp"] = NETX_BIAS_EXP
    return out


def _check_geometry(ly):
    i = ly.index
    if ly.kernel is None:
        raise CompileError("missing", i, "kernelSize")
    stride = ly.kernel if ly.stride is None else ly.stride
    for key, val, lo in (("kernelSize", ly.kernel, 1), ("stride", stride, 1),
                         ("padding", ly.padding, 0), ("dilation", ly.dilation, 1)):
        if min(val) < lo or max(val) > 1024:
            raise CompileError(f"{key}={val} is out of range [{lo}, 1024]", i, key)
    if ly.groups < 1:
        raise CompileError(f"groups={ly.groups} must be >= 1", i, "groups")


def _check_average(g, ly):
    """``average`` (lava-dl's Average block): a host-side readout of the previous neuron
    layer, so it must come last and follow a neuron layer."""
    i = ly.index
    if i != max(g.nodes):
        raise CompileError("an average layer is a host-side readout and must be the last "
                           "layer", i, "type")
    if ly.neuron is not None:
        raise CompileError("an average layer has no neuron", i, "neuron")
    prev = g.nodes[i - 1]["layer"] if i - 1 in g.nodes else None
    if prev is None or prev.kind not in ("dense", "conv", "pool"):
        raise CompileError("an average layer must follow a dense, conv or pool layer", i,
                           "type")


@declare(reads=("graph.input_bits", "graph.input_shape", "graph.timesteps", "layer.bias",
               "layer.delay", "layer.dilation", "layer.groups", "layer.kernel", "layer.kind",
               "layer.neuron", "layer.padding", "layer.shape", "layer.stride", "layer.weight",
               "layer.weight_imag"),
         writes=(), requires=())
def validate(g):
    """Check kinds, required keys, parameter ranges and the graph's structure (pure)."""
    check_graph(g)
    lys = layers(g)
    for ly in lys:
        i = ly.index
        if ly.kind in UNSUPPORTED_LAYERS:
            raise CompileError(UNSUPPORTED_LAYERS[ly.kind], i, "type")
        if ly.kind not in LAYER_KINDS:
            raise CompileError(f"unknown layer type {ly.kind!r} (expected one of "
                               f"{', '.join(LAYER_KINDS)}, dense_rec)", i, "type")
        if ly.kind == "average":
            _check_average(g, ly)
            continue
        if ly.kind == "input" and i != 0:
            raise CompileError("an input layer must be layer 0", i, "type")
        if ly.kind != "flatten" and (len(ly.shape) not in (1, 3)
                                     or any(s <= 0 for s in ly.shape)):
            raise CompileError(f"invalid shape {ly.shape} (expected (N,) or (C, H, W) of "
                               "positive ints)", i, "shape")
        if ly.kind != "flatten" and np.prod(ly.shape, dtype=float) > MAX_NEURONS:
            raise CompileError(f"shape {ly.shape} is too large", i, "shape")
        if ly.kind == "flatten":
            if ly.neuron is not None:
                raise CompileError("a flatten layer has no neuron", i, "neuron")
            continue
        if ly.kind in ("conv", "pool") and ly.neuron is None:
            raise CompileError(f"a {ly.kind} layer needs a neuron group", i, "neuron")
        src = producer(g, i)
        if src is not None and src.neuron is not None and src.neuron.raw.get("gradedSpike") \
                and src.neuron.kind == "CUBA":
            if ly.kind != "dense":
                raise CompileError(f"a {ly.kind} layer cannot receive graded-spike CUBA "
                                   "output (Lava's Conv has no weight exponent to divide the "
                                   "voltage payload by 2^6)", i, "type")
            if ly.delay is not None and np.ndim(ly.delay) and np.asarray(ly.delay).size > 1 \
                    and np.any(np.asarray(ly.delay) != np.asarray(ly.delay).reshape(-1)[0]):
                raise CompileError("per-synapse delays with graded-spike input are "
                                   "unsupported", i, "delay")
        if ly.weight_imag is not None and (ly.neuron is None or ly.neuron.kind != "RF"):
            raise CompileError("complex weights (weight/real, weight/imag) need a "
                               "resonate-and-fire (RF_PHASE) neuron", i, "weight")
        neuron_values(ly)
        _delay_values(ly)
        if ly.kind in ("conv", "pool"):
            _check_geometry(ly)
    if lys[-1].kind in ("flatten", "input"):
        raise CompileError(f"the last layer cannot be {lys[-1].kind!r}", lys[-1].index, "type")
    _shared(check_meta, g.graph.get("input_bits"), g.graph.get("timesteps"),
            g.graph.get("input_shape"))
    return g


@declare(reads=("layer.bias", "layer.delay", "layer.kernel", "layer.kind", "layer.neuron",
               "layer.shape", "layer.stride", "layer.weight", "layer.weight_imag"),
         writes=("layer.neuron", "layer.stride", "layer.delay", "layer.shape"),
         requires=())
def normalize(g):
    """Fill defaults on a validated graph: :func:`neuron_values` into each neuron (and
    :func:`implicit_neuron` into a dense layer without one), delays as full arrays
    (:func:`_delay_values`; None when all are 0), a pool's stride (lava-dl: the kernel)
    where the file has none."""
    for ly in layers(g):
        if ly.kind == "dense":
            ly.shape = (int(np.prod(ly.shape)),)   # lava-dl writes (N, 1, 1) too
            if ly.neuron is None:
                ly.neuron = implicit_neuron()
        if ly.neuron is not None:
            for k, v in neuron_values(ly).items():
                setattr(ly.neuron, k, v)
        if ly.kind in ("dense", "conv"):
            ly.delay = _delay_values(ly)
        if ly.kind in ("conv", "pool") and ly.stride is None:
            ly.stride = ly.kernel
    return g
