"""The NIR front end: ``read_nir(path) -> IR graph``, the same graph form as
:func:`qblif.ir.from_netx.read` gives for a NetX file (layers ``0..n-1`` in chain order, no
input layer, ``g.graph["input_shape"]``), so the passes, emission, engines, report and
verify run unchanged.

Stages (:mod:`qblif.nir.graph`) become layers: ``dense`` / ``conv`` / ``pool`` with a
``CUBA`` neuron (K = 1, reset to zero: NIR's LIF family), or ``flatten``. A neuron node
carrying our exporter's metadata extension (``metadata["qblif"]``, docs/nir.md) is
restored exactly (QB-LIF K, reset mode, fixed-point parameters); every other neuron goes
through :mod:`qblif.nir.quantize`, whose per-layer report lands in
``g.graph["nir_quant"]``.
"""
from __future__ import annotations

import math

import numpy as np

from qblif.core.errors import CompileError
from qblif.ir import Layer, Neuron, new_graph
from qblif.nir.graph import DEFAULT_DT, META_KEY, fail, graph_meta, load, options, scalar, stages  # noqa: F401 (DEFAULT_DT, options: re-exported)
from qblif.core.constants import GRADED_BURST_BITS
from qblif.core.params import message_bits
from qblif.nir.graph import MAX_RELAY, relay_ints
from qblif.nir.quantize import STATE_LIMIT, headroom_problem, quantize_stage

META_INT_KEYS = ("du", "dv", "max_burst")


def _restore(st) -> dict:
    """Exact integer parameters from our metadata extension (no quantization)."""
    m, name, n = st.meta, st.name, st.neuron
    try:
        ints = {k: int(scalar(m[k])) for k in META_INT_KEYS}
        kind = str(m.get("kind", "QBLIF"))
        kind = kind.decode() if isinstance(kind, bytes) else kind
        reset = m.get("reset_mode", "subtract")
        reset = reset.decode() if isinstance(reset, bytes) else str(reset)
        vth = np.asarray(m["vth"])
        bias = np.asarray(m["bias"]) if "bias" in m else None
    except (KeyError, TypeError, ValueError, OverflowError) as exc:   # inf: OverflowError
        raise fail(name, n, f"malformed metadata extension {META_KEY!r} ({exc})") from None
    w64 = st.weight * 64
    if not (np.all(np.isfinite(w64)) and np.array_equal(w64, np.round(w64))):
        raise fail(name, n, f"metadata {META_KEY!r} is present but the weights of "
                   f"{st.ops[0]!r} are not integer multiples of 1/64")
    for key, arr in (("vth", vth), ("bias", bias)):
        if arr is not None and (arr.dtype.kind not in "iuf" or not np.all(np.isfinite(arr))
                                or np.any(arr != np.round(arr))):
            raise fail(name, n, f"metadata {META_KEY}/{key} holds non-integer values")
    return dict(weight=np.round(w64).astype(np.int64), vth=vth.astype(np.int64),
                bias=None if bias is None else bias.astype(np.int64), kind=kind,
                reset_mode=reset, **ints)


def relay_neuron(max_burst: int, bias=None) -> Neuron:
    """The neuron of a relay layer: a QB-LIF with no memory (``du = dv = 4095``: u is this
    step's input ``a << 6``, v keeps ``rtz(v / 4096)``), ``theta = 64`` (``vth = 1``), a bias
    of ``1 + 64 b`` (``bias_mant``, ``bias_exp = 0``; ``b``: integers >= 0 per neuron, or
    None for 0) and reset by subtraction. For an input ``0 <= a + b <= K``: ``v = 64 (a +
    b) + 1``, ``n = (v - 1) // 64 = a + b`` spikes, and 1 is left, which the next step's
    decay takes to 0: it sends ``n = a + b``, every step, exactly (spec section 1)."""
    mant = 1 if bias is None else 1 + 64 * np.asarray(bias, np.int64)
    return Neuron(kind="QBLIF", du=4095, dv=4095, vth=1, bias_mant=mant, bias_exp=0,
                  max_burst=int(max_burst), reset_mode="subtract")


def _delay(st, weight):
    """The IR's axonal delays of stage ``st`` (steps per output): dense the full ``(out,
    in)`` matrix (rows equal: one delay per output neuron), conv the layer's shape; None."""
    if st.delay is None or not np.any(st.delay):
        return None
    if st.kind == "dense":
        return np.repeat(st.delay.reshape(-1, 1), np.asarray(weight).shape[1], axis=1)
    return np.asarray(st.delay, np.int64).copy()


def _relay(st, in_max: int) -> tuple:
    """``(q, neuron, c)`` of a relay stage: integer weights ``c * W`` (:func:`relay_ints`),
    its bias ``c * b`` (integers 0..63: an always-on source sends 1), and the
    :func:`relay_neuron` whose K is the largest value it can send (inputs 0..``in_max``),
    which must fit the burst payload (``GRADED_BURST_BITS``)."""
    c, w = relay_ints(st.weight)
    rows = w.reshape(1, -1) if st.kind == "pool" else w.reshape(w.shape[0], -1)
    bias = None
    if st.bias is not None:
        bias = np.round(np.asarray(st.bias, np.float64) * c).astype(np.int64)
        if np.any(bias < 0) or np.any(bias > 63) or not np.allclose(bias, st.bias * c):
            raise fail(st.name, st.op_types[0], "a relay's bias must be an integer in 0..63")
    per = int(in_max) * rows.sum(1)                     # per relay neuron (pool: one row)
    if bias is not None:
        per = per + np.broadcast_to(bias, st.shape).reshape(per.shape[0], -1).max(1)
    top = int(per.max())
    if top > MAX_RELAY:
        raise fail(st.name, st.op_types[0], f"a relay layer after it would carry values up to "
                   f"{top} (inputs up to {in_max} times weights {c:.6g} x W), which need "
                   f"{top.bit_length()} bits: a graded burst spike carries "
                   f"{GRADED_BURST_BITS} (0..{MAX_RELAY}); use fewer input bits")
    rep = dict(node=st.name, type="relay", op=st.op_types[0], scale=c, limit="relay",
               exact=True, err=dict(weight=0.0, vth=0.0, bias=0.0, du=0.0, dv=0.0),
               u_bound=64.0 * top, v_bound=64.0 * top + 1,
               headroom_u_bits=math.log2(STATE_LIMIT / max(64.0 * top, 1)),
               headroom_v_bits=math.log2(STATE_LIMIT / (64.0 * top + 1)),
               payload_bits=message_bits(max(top, 1)))
    return dict(weight=w, bias=None, report=rep), relay_neuron(max(top, 1), bias), c


def read_nir(path, dt=None, weight_bits: int = 8, input_bits=None,
             input_scale=None, allow_inexact: bool = False) -> "nx.DiGraph":  # noqa: F821
    """Read the NIR file ``path`` into an IR graph; every failure is a CompileError.

    dt: the Euler time step (seconds, NIR's time unit) that discretises the neurons; default
    the file's ``metadata["qblif"]["dt"]``, else 1e-4 (snnTorch's export convention).
    weight_bits: weight mantissa bits (1..8) of the quantized synapses. input_bits: bits of
    the graded input (for the headroom bound; the file's metadata wins). input_scale: the NIR
    graph receives ``frame * input_scale`` (e.g. ``1/15`` for a network trained on inputs in
    [0, 1] run on 4-bit frames); folded into the first layer's weights. Default: the file's
    metadata, else 1. allow_inexact: each layer takes the most precise scale in range,
    not lowered for the 24-bit headroom, and a layer whose worst-case state overflows 24
    bits compiles (refused otherwise: at every useful scale); its line lands in
    ``g.graph["nir_warnings"]``.
    """
    return graph_to_ir(load(path), str(path), dt, weight_bits, input_bits, input_scale,
                       allow_inexact)


def graph_to_ir(graph, path: str = "<nir>", dt=None, weight_bits: int = 8,
                input_bits=None, input_scale=None,
                allow_inexact: bool = False) -> "nx.DiGraph":  # noqa: F821
    """:func:`read_nir` of an in-memory ``nir.NIRGraph`` (``path`` only names it)."""
    dt, bits, scale = options(graph, dt, input_bits, input_scale)
    in_shape, sts = stages(graph, scale, int(weight_bits), dt)
    meta = graph_meta(graph)
    attrs = dict(path=str(path), input_shape=tuple(in_shape), nir_dt=dt,
                 nir_weight_bits=int(weight_bits), nir_input_scale=scale)
    try:
        for key in ("input_bits", "timesteps"):
            if key in meta:
                attrs[key] = int(scalar(meta[key]))
        if "dataset" in meta:
            attrs["dataset"] = str(scalar(meta["dataset"]))
    except (TypeError, ValueError, OverflowError):          # untrusted file (issue 21)
        raise CompileError(f"NIR metadata {META_KEY}/{key}: not a single number "
                           f"({' '.join(repr(meta[key]).split())[:60]})") from None
    g = new_graph(**attrs)
    rows, warnings, in_max, unit = [], [], 2 ** bits - 1, 1.0
    held = True         # the first neuron layer sees the frames, held for each sample
    for i, st in enumerate(sts):
        if st.kind == "flatten":
            g.add_node(i, layer=Layer(index=i, kind="flatten", shape=tuple(st.shape)))
        else:
            if st.relay:
                q, neuron, unit = _relay(st, in_max)
                rows.append(dict(q["report"], index=i, fused=list(st.notes)))
            elif st.meta:
                q = _restore(st)
                neuron = Neuron(kind=q["kind"], du=q["du"], dv=q["dv"], vth=q["vth"],
                                max_burst=q["max_burst"], reset_mode=q["reset_mode"])
            else:
                q = quantize_stage(st, dt, int(weight_bits), in_max,
                                   guarantee=not allow_inexact, in_unit=unit,
                                   held_input=held)
                unit = 1.0
                rep = q["report"]
                if st.op_types[0] == "AvgPool2d" and rep["err"]["weight"] > 0:
                    raise fail(st.ops[0], "AvgPool2d", f"the average 1/{np.prod(st.kernel)} "
                               "times the input gain is not exact in integers at "
                               f"{weight_bits} weight bits (scale {rep['scale']:.4g}, "
                               f"relative error {rep['err']['weight']:.2e})")
                problem = headroom_problem(rep)
                if problem and not allow_inexact:
                    raise CompileError(problem + " (--allow-inexact / allow_inexact=True "
                                       "runs it anyway)")
                warnings += [problem] if problem else []
                neuron = Neuron(kind="CUBA", du=q["du"], dv=q["dv"], vth=q["vth"])
                rows.append(dict(q["report"], index=i, fused=list(st.notes)))
            layer = Layer(index=i, kind=st.kind, shape=tuple(st.shape), weight=q["weight"],
                          bias=q["bias"], neuron=neuron, weight_rec=q.get("weight_rec"),
                          delay=_delay(st, q["weight"]),
                          kernel=st.kernel, stride=st.stride,
                          padding=st.padding, dilation=st.dilation, groups=st.groups)
            g.add_node(i, layer=layer)
            in_max, held = neuron.max_burst, False
        if i:
            g.add_edge(i - 1, i)
        if g.nodes[i]["layer"].weight_rec is not None:   # the IR's dense_rec layer
            g.add_edge(i, i, recurrent=True)
    g.graph["nir_quant"] = rows
    g.graph["nir_warnings"] = warnings
    # the headroom of these layers holds for held frames from zero state only (api.run)
    g.graph["nir_held_input"] = [r["index"] for r in rows if r.get("held_input")]
    g.graph["nir_nodes"] = [st.name for st in sts]
    g.graph["nir_readouts"] = [i for i, st in enumerate(sts) if st.neuron_type == "LI"]
    g.graph["nir_relays"] = [i for i, st in enumerate(sts) if st.relay]
    return g
