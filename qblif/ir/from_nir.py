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

import numpy as np

from qblif.core.errors import CompileError
from qblif.ir import Layer, Neuron, new_graph
from qblif.nir.graph import DEFAULT_DT, META_KEY, fail, graph_meta, load, options, scalar, stages  # noqa: F401 (DEFAULT_DT, options: re-exported)
from qblif.nir.quantize import headroom_problem, quantize_stage

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
    in_shape, sts = stages(graph, scale)
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
    rows, warnings, in_max = [], [], 2 ** bits - 1
    held = True         # the first neuron layer sees the frames, held for each sample
    for i, st in enumerate(sts):
        if st.kind == "flatten":
            g.add_node(i, layer=Layer(index=i, kind="flatten", shape=tuple(st.shape)))
        else:
            if st.meta:
                q = _restore(st)
                neuron = Neuron(kind=q["kind"], du=q["du"], dv=q["dv"], vth=q["vth"],
                                max_burst=q["max_burst"], reset_mode=q["reset_mode"])
            else:
                q = quantize_stage(st, dt, int(weight_bits), in_max,
                                   guarantee=not allow_inexact, held_input=held)
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
    return g
