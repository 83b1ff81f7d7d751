"""Read a NetX HDF5 file (``docs/netx_format.md``) into the graph IR.

The reader only decodes: it turns every dataset into plain Python / numpy
values (raising :class:`CompileError` naming the layer and key for anything it
cannot decode) and links the layers in file order. Range and consistency checks
are the ``validate`` pass. No torch, no Lava import here.
"""
from __future__ import annotations

import numpy as np

from qblif.core.errors import CompileError
from qblif.ir import Layer, Neuron, new_graph
from qblif.netx.check import ModelFileError, open_file, read_array, read_int, read_pair, read_string, subgroup

MAX_LAYERS = 4096
# decoding primitives: shared with qblif.training.slayer.load_network (one validation per reader)
_sub = subgroup


def read_neuron(group, i) -> Neuron:
    """Decode ``/layer/<i>/neuron``; keys are reported as ``neuron/<key>``."""
    ng = _sub(group, "neuron", i)

    def key(k):
        return f"neuron/{k}"

    def arr(k, integer=True):
        try:
            return read_array(ng, k, i, integer)
        except ModelFileError as e:
            raise CompileError(e.reason, i, key(k)) from None

    def integer(k, default=None):
        if default is not None and k not in ng:
            return default
        a = arr(k)
        if a.size != 1:
            raise CompileError(f"expected a scalar, found shape {a.shape}", i, key(k))
        return int(a.reshape(-1)[0])

    def string(k, default=None):
        if default is not None and k not in ng:
            return default
        try:
            return read_string(ng, k, i)
        except ModelFileError as e:
            raise CompileError(e.reason, i, key(k)) from None

    kind = string("type").upper()
    raw = {k: None for k in ng.keys()}
    if kind in ("CUBA", "LOIHI"):
        graded = integer("gradedSpike", 0) if "gradedSpike" in ng else 0
        raw["gradedSpike"] = graded
        return Neuron(kind="CUBA", du=integer("iDecay") - 1, dv=integer("vDecay"),
                      vth=arr("vThMant"), ref_delay=integer("refDelay", 1),
                      message_bits=integer("messageBits") if "messageBits" in ng else None,
                      raw=raw)
    if kind in ("RF_PHASE", "RF_IZHIKEVICH"):   # as stock NetX: Lava's RF / RF_IZ
        params = {k: integer(k) for k in ("sinDecay", "cosDecay")}
        params["izhikevich"] = int(kind == "RF_IZHIKEVICH")
        return Neuron(kind="RF", du=0, dv=0, vth=arr("vThMant"), raw=raw, params=params)
    if kind == "ALIF":
        return Neuron(kind="ALIF", du=integer("iDecay") - 1, dv=integer("vDecay"),
                      vth=arr("vThMant"), ref_delay=integer("refDelay", 1), raw=raw,
                      params={k: integer(k) for k in ("thDecay", "refDecay", "vThStep")})
    if kind == "QBLIF":
        return Neuron(kind="QBLIF", du=integer("iDecay") - 1, dv=integer("vDecay"),
                      vth=arr("vThMant"), max_burst=integer("maxBurst"),
                      reset_mode=string("resetMode", "subtract"),
                      ref_delay=integer("refDelay", 1),
                      message_bits=integer("messageBits") if "messageBits" in ng else None,
                      raw=raw)
    if kind == "SDNN":
        # as stock NetX (netx.hdf5.Network.get_neuron_params): messageBits defaults
        # to 16; the *presence* of sigma_output selects Lava's Sigma (no vThMant read);
        # otherwise vThMant is the delta threshold. lava-dl also writes `activation`.
        sigma = "sigma_output" in ng
        if sigma:
            flag = arr("sigma_output")
            if flag.size != 1:
                raise CompileError(f"expected a scalar, found shape {flag.shape}", i,
                                   key("sigma_output"))
            raw["sigma_output"] = int(flag.reshape(-1)[0])
        for k in ("cum_error", "cumError"):
            if k in ng:
                raw[k] = integer(k)
        return Neuron(kind="SDNN", du=0, dv=0, vth=0 if sigma else arr("vThMant"),
                      message_bits=integer("messageBits", 16),
                      sigma_output=sigma, activation=string("activation", "relu").lower(),
                      raw=raw)
    # RF, ... : kept for the validate pass to reject with a clear message
    return Neuron(kind=kind, du=0, dv=0, vth=1, raw=raw)


def _is_group(group, key) -> bool:
    import h5py
    try:
        return isinstance(group[key], h5py.Group)
    except Exception:   # unreadable: _dataset reports it
        return False


def read_layer(group, i) -> Layer:
    kind = read_string(group, "type", i).lower()
    if kind == "dense_rec":   # lava-dl cuba.Recurrent: a dense layer + weights onto itself
        layer = read_layer_kind(group, i, "dense")
        layer.weight_rec = read_array(group, "weight_rec", i)
        return layer
    return read_layer_kind(group, i, kind)


def read_layer_kind(group, i, kind) -> Layer:
    if kind == "flatten":
        shape = tuple(int(s) for s in read_array(group, "shape", i).reshape(-1)) \
            if "shape" in group else ()
        return Layer(index=i, kind=kind, shape=shape)
    known = ("input", "dense", "conv", "pool", "average")
    shape = tuple(int(s) for s in read_array(group, "shape", i).reshape(-1)) \
        if kind in known or "shape" in group else ()   # (the validate pass refuses others)
    layer = Layer(index=i, kind=kind, shape=shape)
    if kind == "input":   # an input neuron's transform (stock NetX reads, never applies it)
        if "weight" in group:
            layer.weight = read_array(group, "weight", i, integer=False)
        if "bias" in group:
            layer.bias = read_array(group, "bias", i, integer=False)
    complex_w = kind in ("dense", "conv", "pool", "dense_comp") and "weight" in group and \
        _is_group(group, "weight")
    if complex_w and kind != "dense":
        raise CompileError(f"complex weights (weight/real, weight/imag) on a {kind} layer are "
                           "unsupported (stock NetX builds them for dense layers only)",
                           i, "weight")
    if complex_w:   # a resonate-and-fire layer (stock NetX's ComplexDense)
        layer.weight = read_array(group, "weight/real", i)
        layer.weight_imag = read_array(group, "weight/imag", i)
    elif kind in ("dense", "conv", "pool"):
        layer.weight = read_array(group, "weight", i)
        if "bias" in group:
            layer.bias = read_array(group, "bias", i)
        if "delay" in group:   # axonal delays (steps), checked by the validate pass
            layer.delay = read_array(group, "delay", i)
    if kind in ("conv", "pool"):
        layer.kernel = read_pair(group, "kernelSize", i, None)
        layer.stride = read_pair(group, "stride", i, (1, 1) if kind == "conv" else None)
        layer.padding = read_pair(group, "padding", i, (0, 0))
        layer.dilation = read_pair(group, "dilation", i, (1, 1))
        layer.groups = read_int(group, "groups", i, 1)
    if "neuron" in group:
        layer.neuron = read_neuron(group, i)
    return layer


def read(path) -> "nx.DiGraph":  # noqa: F821
    """Read ``path`` into an IR graph; every failure is a :class:`CompileError`."""
    try:
        f = open_file(path)
    except ModelFileError as exc:
        raise CompileError.of(exc) from None
    try:
        return _read_file(f, str(path))
    except ModelFileError as exc:
        raise CompileError.of(exc) from None
    except Exception as exc:  # corrupt internals of an otherwise open file
        raise CompileError(f"{path}: unreadable ({type(exc).__name__}: {exc})") from None
    finally:
        f.close()


def _read_file(f, path):
    top = _sub(f, "layer", None)
    names = list(top.keys())
    if not names:
        raise CompileError("no layers", None, "layer")
    if len(names) > MAX_LAYERS or sorted(names, key=lambda s: (len(s), s)) != \
            [str(k) for k in range(len(names))]:
        raise CompileError(f"layer names must be 0..{len(names) - 1}, found {sorted(names)[:8]}",
                           None, "layer")
    meta = {}
    if "qblif" in f:
        q = _sub(f, "qblif", None)
        if "inputShape" in q:
            meta["input_shape"] = tuple(int(s) for s in read_array(q, "inputShape", "qblif").reshape(-1))
        if "inputBits" in q:
            meta["input_bits"] = read_int(q, "inputBits", "qblif")
        if "timesteps" in q:
            meta["timesteps"] = read_int(q, "timesteps", "qblif")
        if "dataset" in q:
            meta["dataset"] = read_string(q, "dataset", "qblif")
        if "encoding" in q:
            meta["input_encoding"] = read_string(q, "encoding", "qblif")
    g = new_graph(path=path, **meta)
    prev = None
    for k in range(len(names)):
        layer = read_layer(_sub(top, str(k), k), k)
        g.add_node(k, layer=layer)
        if prev is not None:
            g.add_edge(prev, k)
        if layer.weight_rec is not None:
            g.add_edge(k, k, recurrent=True)
        prev = k
    return g
