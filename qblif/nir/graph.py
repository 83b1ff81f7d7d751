"""Load a NIR file and reduce it to a chain of float *stages* (no quantization here).

A stage is what one IR layer becomes: one synaptic op (``Affine``/``Linear``/``Conv1d``/
``Conv2d``/``SumPool2d``/``AvgPool2d``, with any adjacent ``Scale`` folded in) followed
by one neuron node (``CubaLIF``/``LIF``/``IF``/``LI``/``Threshold``), or a ``Flatten``.
Nested ``NIRGraph`` nodes are inlined (their ``Input``/``Output`` nodes become plain
wires). What the IR (a feed-forward chain) cannot hold is refused with a
:class:`CompileError` naming the node and its NIR type: recurrent subgraphs (a cycle),
branches and merges, two synaptic ops in a row, a neuron with no synapse before it.

Shapes: NIR's ``(C, H, W)`` / ``(N,)`` are the IR's file order. A ``Conv1d`` over
``(C, L)`` becomes a conv with ``H = 1``: its stage shapes are ``(C, 1, L)``.
Float units are NIR's own: weights multiply the upstream values, neuron parameters
are as in NIR's equations (see :mod:`qblif.nir.simulate`).
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from qblif.core.errors import CompileError
from qblif.core.constants import (FALLBACK_INPUT_BITS, GRADED_BURST_BITS, MAX_ELEMENTS,
                                  MAX_NIR_DEPTH)
from qblif.core.isolate import ReadFailed, ReadTimeout, read_isolated
from qblif.core.hdf5_limits import check_hdf5
from qblif.core.params import INPUT_BITS_RANGE, MAX_AXON_DELAY
from qblif.core.numeric import conv_out
from qblif.nir.linear import synapse

SYNAPSES = ("Affine", "Linear", "Conv1d", "Conv2d", "SumPool2d", "AvgPool2d")
NEURONS = ("CubaLIF", "LIF", "IF", "LI", "Threshold")
WIRES = ("Input", "Output")
SUPPORTED = SYNAPSES + NEURONS + WIRES + ("Flatten", "Scale", "Delay", "NIRGraph")
META_KEY = "qblif"          # metadata extension of our exporter (docs/nir.md)
MAX_NODES = 4096


DEFAULT_DT = 1e-4       # snnTorch's NIR export convention (tau = dt / (1 - beta))


def scalar(x):
    """The one number or string that ``x`` holds, else None (also for a dict or an object)."""
    a = np.asarray(x)
    return a.reshape(-1)[0].item() if a.size == 1 and a.dtype.kind in "biufSU" else None


def graph_meta(graph) -> dict:
    """The top-level ``metadata["qblif"]`` of a graph written by our exporter, or {}."""
    md = getattr(graph, "metadata", None) or {}
    ext = md.get(META_KEY) if isinstance(md, dict) else None
    return ext if isinstance(ext, dict) else {}


def positive(name, value) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise CompileError(f"{name}={value!r} is not a number") from None
    if not np.isfinite(value) or value <= 0:
        raise CompileError(f"{name}={value} must be positive and finite")
    return value


def options(graph, dt=None, input_bits=None, input_scale=None) -> tuple:
    """``(dt, input_bits, input_scale)``. dt, input_scale: the argument, else the file's
    metadata, else the default (1e-4, 1.0); input_bits as ``qblif.compile``: the file's
    metadata, else the argument, else 8."""
    meta = graph_meta(graph)
    if dt is None:
        dt = scalar(meta["dt"]) if "dt" in meta else DEFAULT_DT
    if input_scale is None:
        input_scale = scalar(meta["input_scale"]) if "input_scale" in meta else 1.0
    if "input_bits" in meta:
        input_bits = scalar(meta["input_bits"])
    try:
        input_bits = int(FALLBACK_INPUT_BITS if input_bits is None else input_bits)
    except (TypeError, ValueError, OverflowError):   # inf (issue 21)
        raise CompileError(f"input_bits={input_bits!r} is not an integer") from None
    lo, hi = INPUT_BITS_RANGE        # checked before 2 ** input_bits (issue 21: 1e300 hung)
    if not lo <= input_bits <= hi:
        raise CompileError(f"input_bits={input_bits} is out of range [{lo}, {hi}]")
    return positive("dt", dt), input_bits, positive("input_scale", input_scale)


def _where(name, node) -> str:
    """``node``: the NIR node, or its type name."""
    return f"NIR node {name!r} ({node if isinstance(node, str) else type(node).__name__})"


def fail(name, node, why) -> CompileError:
    """A CompileError naming the node and its NIR type."""
    return CompileError(f"{_where(name, node)}: {why}")


def array(name, node, attr, ndim=None, allow_inf=False) -> np.ndarray:
    """A float64 parameter array, finite (``allow_inf``: +inf allowed), of ``ndim`` dims."""
    val = getattr(node, attr, None)
    if val is None:
        raise fail(name, node, f"parameter {attr!r} is missing")
    try:
        arr = np.asarray(val, dtype=np.float64)
    except (TypeError, ValueError):
        raise fail(name, node, f"parameter {attr!r} is not numeric") from None
    if arr.size == 0 or arr.size > MAX_ELEMENTS:
        raise fail(name, node, f"parameter {attr!r} has {arr.size} elements")
    bad = np.isnan(arr) | (np.isinf(arr) & ~(allow_inf & (arr > 0)))
    if np.any(bad):
        raise fail(name, node, f"parameter {attr!r} holds NaN or infinity")
    if ndim is not None and arr.ndim != ndim:
        raise fail(name, node, f"parameter {attr!r} has shape {arr.shape}, expected {ndim} dims")
    return arr


def param(st, attr, default=None, allow_inf=False, positive=False) -> np.ndarray:
    """A neuron parameter of stage ``st`` broadcast to the stage shape (float64): a scalar,
    one value per neuron, or (3-D layers) one per channel. ``default`` when absent."""
    n, name, shape = st.neuron, st.name, tuple(st.shape)
    if default is not None and getattr(n, attr, None) is None:
        return np.full(shape, float(default))
    a = array(name, n, attr, allow_inf=allow_inf)
    if a.size == 1:
        a = np.full(shape, a.reshape(-1)[0])
    elif a.size == int(np.prod(shape)):
        a = a.reshape(shape)
    elif len(shape) > 1 and a.size == shape[0]:
        a = np.broadcast_to(a.reshape((-1,) + (1,) * (len(shape) - 1)), shape).copy()
    else:
        raise fail(name, n, f"parameter {attr!r} of shape {a.shape} does not fit the layer "
                   f"shape {shape}")
    if positive and np.any(a <= 0):
        raise fail(name, n, f"parameter {attr!r} must be > 0")
    return a


def pair(name, node, attr, default=None) -> tuple:
    val = getattr(node, attr, default)
    if val is None:
        raise fail(name, node, f"parameter {attr!r} is missing")
    if isinstance(val, (str, bytes)):
        return val.decode() if isinstance(val, bytes) else val
    try:
        arr = np.asarray(val).reshape(-1)
        ok = arr.size in (1, 2) and arr.dtype.kind in "iuf" and np.all(np.isfinite(arr)) \
            and np.all(arr == np.round(arr)) and np.all(np.abs(arr) < 2 ** 31)
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise fail(name, node, f"parameter {attr!r}={val!r} is not an int or an int pair")
    arr = arr.astype(np.int64)
    return (int(arr[0]), int(arr[-1]))


@dataclass
class Stage:
    """One IR layer in NIR's float units.

    kind: ``dense`` | ``conv`` | ``pool`` | ``flatten``. weight: dense ``(out, in)``,
    conv ``(C_out, C_in/groups, kH, kW)``, pool ``(kH, kW)`` (1.0 for SumPool,
    ``1/(kH*kW)`` for AvgPool), floats in NIR units. bias: ``shape`` array or None
    (the op's additive term). neuron: the NIR neuron node; name: its node name
    (the op's, for a flatten). ops: names of the folded synaptic/scale nodes; notes: one
    line per fusion of two linear ops (what was chosen and why).
    """
    kind: str
    name: str
    in_shape: tuple
    shape: tuple
    neuron: object = None
    weight: Optional[np.ndarray] = None
    bias: Optional[np.ndarray] = None
    kernel: Optional[tuple] = None
    stride: tuple = (1, 1)
    padding: tuple = (0, 0)
    dilation: tuple = (1, 1)
    groups: int = 1
    ops: list = field(default_factory=list)
    op_types: list = field(default_factory=list)
    notes: list = field(default_factory=list)
    weight_rec: Optional[np.ndarray] = None
    relay: bool = False
    n_inputs: Optional[int] = None  # inputs before the source columns (:func:`_sources`)
    reset_weight: Optional[np.ndarray] = None   # the columns that emulate v(0) = 0
    delay: Optional[np.ndarray] = None   # axonal delay (steps) per output, of ``shape``
    delay_after: bool = False   # the delay came after the op (NIR would delay its bias too)

    @property
    def neuron_type(self) -> str:
        return type(self.neuron).__name__ if self.neuron is not None else ""

    @property
    def meta(self) -> dict:
        """The qblif metadata extension on the neuron node (our exporter), or {}."""
        md = getattr(self.neuron, "metadata", None) or {}
        ext = md.get(META_KEY) if isinstance(md, dict) else None
        return ext if isinstance(ext, dict) else {}


def load(path) -> "nir.NIRGraph":  # noqa: F821
    """``nir.read`` with every failure turned into one CompileError; declared sizes are
    checked first (:func:`check_hdf5`)."""
    import nir
    check_hdf5(path, CompileError, "NIR")
    try:        # in a child with a time limit: a damaged file can hang HDF5 itself
        return read_isolated(nir.read, str(path), False)
    except ReadTimeout as exc:
        raise CompileError(f"{path}: not a readable NIR file (HDF5 {exc}: a damaged file)") \
            from None
    except ReadFailed as exc:  # h5py, KeyError for missing datasets, ValueError for types
        if exc.kind == "FileNotFoundError":
            raise CompileError(f"{path}: no such file") from None
        raise CompileError(f"{path}: not a readable NIR file ({exc})") from None


def _inline(graph, prefix="", depth=0):
    """Flatten nested graphs: ``(nodes {name: node}, edges [(a, b)], inputs, outputs)``.

    Sub-graph nodes are named ``<sub>.<node>``; edges to ``<sub>`` or ``<sub>.input``
    go to its Input nodes, from ``<sub>`` or ``<sub>.output`` come from its Output nodes.
    """
    import nir
    if depth > MAX_NIR_DEPTH:
        raise CompileError(f"NIR graph {prefix!r}: nested more than {MAX_NIR_DEPTH} levels deep")
    nodes = getattr(graph, "nodes", None)
    edges = getattr(graph, "edges", None)
    if not isinstance(nodes, dict) or not isinstance(edges, (list, tuple, np.ndarray)):
        raise CompileError(f"NIR graph {prefix or '/'!r}: has no nodes or no edges")
    if len(nodes) > MAX_NODES:
        raise CompileError(f"NIR graph {prefix or '/'!r}: {len(nodes)} nodes (limit {MAX_NODES})")
    flat, flat_edges, ports = {}, [], {}
    for name, node in nodes.items():
        full = f"{prefix}{name}"
        if isinstance(node, nir.NIRGraph):
            sub_nodes, sub_edges, ins, outs = _inline(node, full + ".", depth + 1)
            if not ins or not outs:
                raise fail(full, node, "a nested graph needs an Input and an Output node")
            flat.update(sub_nodes)
            flat_edges += sub_edges
            ports[name] = (ins, outs)
        else:
            flat[full] = node
    for e in edges:
        try:
            a, b = (str(x.decode() if isinstance(x, bytes) else x) for x in e)
        except (TypeError, ValueError):
            raise CompileError(f"NIR graph {prefix or '/'!r}: malformed edge {e!r}") from None
        srcs = _endpoint(a, ports, prefix, out=True)
        dsts = _endpoint(b, ports, prefix, out=False)
        flat_edges += [(s, d) for s in srcs for d in dsts]
    ins = [f"{prefix}{n}" for n, v in nodes.items() if isinstance(v, nir.Input)]
    outs = [f"{prefix}{n}" for n, v in nodes.items() if isinstance(v, nir.Output)]
    return flat, flat_edges, ins, outs


def _endpoint(x, ports, prefix, out):
    head, _, port = x.partition(".")
    if head in ports:
        ins, outs = ports[head]
        if not port or port in ("input", "output"):
            return outs if out else ins
        return [f"{prefix}{x}"]
    return [f"{prefix}{x}"]


def _splice_wires(nodes, edges, keep):
    """Remove sub-graph Input/Output nodes (not in ``keep``), connecting around them."""
    import nir
    for name in [n for n, v in nodes.items() if isinstance(v, (nir.Input, nir.Output))
                 and n not in keep]:
        ins = [a for a, b in edges if b == name]
        outs = [b for a, b in edges if a == name]
        edges = [e for e in edges if name not in e] + [(a, b) for a in ins for b in outs]
        del nodes[name]
    return nodes, list(dict.fromkeys(edges))


RECURRENT_OPS = ("Affine", "Linear")


def _recurrent_edges(nodes, edges) -> dict:
    """``{neuron: (op name, op node)}`` for each recurrent edge: a neuron's output through
    one ``Affine``/``Linear`` back to its own input (snnTorch's ``RLeaky``/``RSynaptic``,
    ``lif -> w_rec -> lif``)."""
    rec = {}
    for name, node in nodes.items():
        if type(node).__name__ not in RECURRENT_OPS:
            continue
        ins = [a for a, b in edges if b == name]
        outs = [b for a, b in edges if a == name]
        if len(ins) == 1 and outs == ins and type(nodes[ins[0]]).__name__ in NEURONS:
            if ins[0] in rec:
                raise fail(ins[0], nodes[ins[0]], f"has two recurrent edges ({rec[ins[0]][0]!r}"
                           f", {name!r})")
            rec[ins[0]] = (name, node)
    return rec


def chain(graph) -> list:
    """The top-level graph as an ordered list of ``(name, node)``, Input first, Output last."""
    return chain_parts(graph)[0]


def chain_parts(graph) -> tuple:
    """``(chain, recurrent)``: :func:`chain` with each recurrent edge taken out, and
    ``{neuron name: (op name, op node)}`` of those edges (:func:`_recurrent_edges`)."""
    import networkx as nx
    nodes, edges, ins, outs = _inline(graph)
    if len(ins) != 1 or len(outs) != 1:
        raise CompileError(f"NIR graph: expected one Input and one Output node, found "
                           f"{len(ins)} Input ({', '.join(ins) or '-'}) and {len(outs)} "
                           f"Output ({', '.join(outs) or '-'})")
    for a, b in edges:
        for x in (a, b):
            if x not in nodes:
                raise CompileError(f"NIR graph: edge ({a!r}, {b!r}) refers to a missing node "
                                   f"{x!r}")
    nodes, edges = _splice_wires(dict(nodes), edges, set(ins) | set(outs))
    for name, node in nodes.items():
        t = type(node).__name__
        if t not in SUPPORTED:
            raise fail(name, node, f"unsupported node type (supported: {', '.join(SUPPORTED)})")
    rec = _recurrent_edges(nodes, edges)
    for op, _ in rec.values():
        del nodes[op]
    edges = [e for e in edges if e[0] in nodes and e[1] in nodes]
    g = nx.DiGraph()
    g.add_nodes_from(nodes)
    g.add_edges_from(edges)
    _refuse_cycle(g, nodes)
    order = [ins[0]]
    seen = {ins[0]}
    while order[-1] != outs[0]:
        cur = order[-1]
        succ = list(g.successors(cur))
        if len(succ) != 1:
            why = "has no successor (dangling)" if not succ else \
                f"branches to {len(succ)} nodes ({', '.join(succ)}): only chains are supported"
            raise fail(cur, nodes[cur], why)
        nxt = succ[0]
        if g.in_degree(nxt) != 1:
            raise fail(nxt, nodes[nxt], f"merges {g.in_degree(nxt)} inputs "
                       f"({', '.join(g.predecessors(nxt))}): only chains are supported")
        order.append(nxt)
        seen.add(nxt)
    left = [n for n in nodes if n not in seen]
    if left:
        raise fail(left[0], nodes[left[0]], "is not on the path from Input to Output")
    return [(n, nodes[n]) for n in order], rec


def _refuse_cycle(g, nodes) -> None:
    """One CompileError for the first cycle found (linear time: enumerating every simple
    cycle is exponential on a hostile graph). A cycle through no neuron is an algebraic loop."""
    import networkx as nx
    try:
        cyc = [a for a, _ in nx.find_cycle(g)]
    except nx.NetworkXNoCycle:
        return
    path = " -> ".join(cyc + cyc[:1])
    if not any(type(nodes[n]).__name__ in NEURONS for n in cyc):
        raise CompileError(f"NIR node {cyc[0]!r}: a cycle through no neuron ({path}): an "
                           "algebraic loop has no value")
    raise CompileError(f"NIR node {cyc[0].split('.')[0]!r}: a recurrent subgraph (cycle {path}) "
                       "is not representable: the IR's recurrent layer takes one Affine/Linear "
                       "from a neuron back to itself")


def _input_shape(name, node, first_op) -> tuple:
    t = getattr(node, "input_type", None) or {}
    shape = t.get("input") if isinstance(t, dict) else None
    if shape is None and isinstance(t, dict) and len(t) == 1:
        shape = next(iter(t.values()))
    if shape is None:
        raise fail(name, node, "has no input shape")
    try:
        shape = tuple(int(s) for s in np.asarray(shape).reshape(-1))
    except (TypeError, ValueError, OverflowError):     # untrusted file (issue 21)
        raise fail(name, node, f"input shape {' '.join(repr(shape).split())[:60]} is not a "
                   "list of integers") from None
    if not shape or min(shape) <= 0 or np.prod(shape, dtype=float) > MAX_ELEMENTS:
        raise fail(name, node, f"invalid shape {shape}")
    if len(shape) == 2 and first_op == "Conv1d":
        return (shape[0], 1, shape[1])
    if len(shape) not in (1, 3):
        raise fail(name, node, f"shape {shape}: inputs are (N,) or (C, H, W) (or (C, L) "
                   "into a Conv1d)")
    return shape


def _fold_scale(name, node, st, after):
    """Fold a Scale node into the stage's op: after (per output) or before (dense: per input)."""
    s = array(name, node, "scale")
    if s.size == 1 or np.ptp(s) == 0:
        st.weight = st.weight * float(s.reshape(-1)[0])
        if after and st.bias is not None:
            st.bias = st.bias * float(s.reshape(-1)[0])
        return
    if after and st.kind in ("dense", "conv") and s.size == st.shape[0]:
        st.weight = st.weight * s.reshape((-1,) + (1,) * (st.weight.ndim - 1))
        if st.bias is not None:
            st.bias = st.bias * s.reshape((-1,) + (1,) * (len(st.shape) - 1))
        return
    if after and st.kind == "dense" and s.size == int(np.prod(st.shape)):
        st.weight = st.weight * s.reshape(-1, 1)
        if st.bias is not None:
            st.bias = st.bias * s.reshape(st.shape)
        return
    if not after and st.kind == "dense" and s.size == st.weight.shape[1]:
        st.weight = st.weight * s.reshape(1, -1)
        return
    raise fail(name, node, f"a Scale of shape {s.shape} cannot be folded into "
               f"{st.op_types[0]} {st.ops[0]!r} (scalars, per-output-channel after the op, or "
               "per-input before a dense op)")


def _synapse(name, node, cur) -> Stage:
    t = type(node).__name__
    if t in ("Affine", "Linear"):
        w = array(name, node, "weight")
        if w.ndim != 2:
            raise fail(name, node, f"weight has shape {w.shape}, expected (out, in)")
        n_in = int(np.prod(cur))
        if w.shape[1] != n_in:
            raise fail(name, node, f"weight shape {w.shape} does not fit its input of {cur} "
                       f"({n_in} values)")
        if len(cur) != 1:
            raise fail(name, node, f"a dense op needs a 1-D input, found {cur}: add a Flatten")
        st = Stage("dense", name, cur, (w.shape[0],), weight=w)
        if t == "Affine":
            b = array(name, node, "bias").reshape(-1)
            if b.size != w.shape[0]:
                raise fail(name, node, f"bias has {b.size} values, expected {w.shape[0]}")
            st.bias = b
        return st
    if len(cur) != 3:
        raise fail(name, node, f"needs a (C, H, W) input, found {cur}")
    c_in = cur[0]
    if t in ("Conv1d", "Conv2d"):
        w = array(name, node, "weight")
        if t == "Conv1d":
            if w.ndim != 3 or cur[1] != 1:
                raise fail(name, node, f"weight {w.shape} / input {cur}: expected "
                           "(C_out, C_in/groups, k) over a (C, L) input")
            w = w[:, :, None, :]
            one = lambda v: (1, int(np.asarray(v).reshape(-1)[0]))  # noqa: E731
            stride, dil = one(pair(name, node, "stride")), one(pair(name, node, "dilation"))
            pad = pair(name, node, "padding")
            pad = pad if isinstance(pad, str) else (0, pad[0])
        else:
            if w.ndim != 4:
                raise fail(name, node, f"weight has shape {w.shape}, expected "
                           "(C_out, C_in/groups, kH, kW)")
            stride, dil = pair(name, node, "stride"), pair(name, node, "dilation")
            pad = pair(name, node, "padding")
        groups = pair(name, node, "groups", 1)[0]
        kernel = tuple(int(k) for k in w.shape[2:])
        if isinstance(pad, str):
            if pad == "valid":
                pad = (0, 0)
            elif pad == "same" and all(k % 2 for k in kernel) and stride == (1, 1):
                pad = tuple((k - 1) * d // 2 for k, d in zip(kernel, dil))
            else:
                raise fail(name, node, f"padding {pad!r} is unsupported with kernel {kernel}, "
                           f"stride {stride}")
        if groups < 1 or c_in % groups or w.shape[0] % groups or w.shape[1] != c_in // groups:
            raise fail(name, node, f"weight shape {w.shape} with groups={groups} does not fit "
                       f"its input of {cur}")
        st = Stage("conv", name, cur, (), weight=w, kernel=kernel, stride=stride, padding=pad,
                   dilation=dil, groups=groups)
        c_out = w.shape[0]
        b = getattr(node, "bias", None)
        if b is not None:
            b = array(name, node, "bias").reshape(-1)
            if b.size not in (1, c_out):
                raise fail(name, node, f"bias has {b.size} values, expected {c_out}")
            if np.any(b):
                st.bias = b
    else:   # SumPool2d / AvgPool2d
        kernel = pair(name, node, "kernel_size")
        stride = pair(name, node, "stride", kernel)
        pad = pair(name, node, "padding", (0, 0))
        if isinstance(pad, str) or isinstance(stride, str) or isinstance(kernel, str):
            raise fail(name, node, "string kernel/padding/stride is unsupported for pooling")
        if min(kernel) < 1 or max(kernel) > 1024:
            raise fail(name, node, f"kernel_size={kernel} is out of range [1, 1024]")
        w = np.ones(kernel) / (1.0 if t == "SumPool2d" else float(kernel[0] * kernel[1]))
        st = Stage("pool", name, cur, (), weight=w, kernel=kernel, stride=stride, padding=pad)
        c_out = c_in
    for key, val, lo in (("kernel", st.kernel, 1), ("stride", st.stride, 1),
                         ("padding", st.padding, 0), ("dilation", st.dilation, 1)):
        if min(val) < lo or max(val) > 1024:
            raise fail(name, node, f"{key}={val} is out of range [{lo}, 1024]")
    hw = tuple(conv_out(cur[1 + a], st.kernel[a], st.stride[a], st.padding[a], st.dilation[a])
               for a in (0, 1))
    if min(hw) <= 0:
        raise fail(name, node, f"kernel {st.kernel} does not fit its input {cur}")
    st.shape = (c_out,) + hw
    if st.bias is not None:
        st.bias = np.broadcast_to(st.bias.reshape(-1, 1, 1), st.shape).copy()
    return st


MAX_FUSED = 2 ** 24     # elements of a linear op materialized as a dense matrix
MAX_RELAY = 2 ** GRADED_BURST_BITS - 1  # the largest value a relay passes on (a burst count)


def _full_kernel(st) -> np.ndarray:
    """The conv/pool weight of stage ``st`` as one ``(C_out, C_in, kH, kW)`` kernel (groups
    expanded to a block diagonal; a pooling is the diagonal of its window)."""
    c_in = st.in_shape[0]
    if st.kind == "pool":
        w = np.zeros((c_in, c_in) + st.weight.shape)
        w[np.arange(c_in), np.arange(c_in)] = st.weight
        return w
    g, c_out = st.groups, st.weight.shape[0]
    if g == 1:
        return st.weight
    og, cg = c_out // g, c_in // g
    w = np.zeros((c_out, c_in) + st.weight.shape[2:])
    for i in range(g):
        w[i * og:(i + 1) * og, i * cg:(i + 1) * cg] = st.weight[i * og:(i + 1) * og]
    return w


def _pads_are_zeros(st) -> bool:
    """Whether zero padding after ``st`` equals ``st``'s output over zero-padded input: a
    pooling that tiles its input exactly (kernel = stride, no padding, no remainder)."""
    return st.kind == "pool" and tuple(st.kernel) == tuple(st.stride) \
        and not any(st.padding) and all(st.in_shape[1 + a] % st.stride[a] == 0 for a in (0, 1))


def _fuse_convs(st, nxt) -> bool:
    """Fuse conv ``nxt`` after a conv or pooling ``st`` into one conv, in place: stride
    ``s1 s2``, kernel ``(K2 - 1) d2 s1 + (K1 - 1) d1 + 1``, padding ``p2 s1 + p1``, weights
    ``sum_m W2[o, m] W1[m, i]`` at each composed tap (pooling then conv: a strided conv with
    the composed kernel). False (nothing changed) where they do not fuse."""
    if nxt.kind != "conv" or st.kind not in ("conv", "pool"):
        return False
    if any(nxt.padding) and not _pads_are_zeros(st):
        return False
    w1, w2 = _full_kernel(st), _full_kernel(nxt)
    (s1, p1, d1), (s2, d2) = (st.stride, st.padding, st.dilation), (nxt.stride, nxt.dilation)
    k1, k2 = w1.shape[2:], w2.shape[2:]
    size = tuple((k2[a] - 1) * d2[a] * s1[a] + (k1[a] - 1) * d1[a] + 1 for a in (0, 1))
    stride = (s1[0] * s2[0], s1[1] * s2[1])
    pad = (nxt.padding[0] * s1[0] + p1[0], nxt.padding[1] * s1[1] + p1[1])
    hw = tuple(conv_out(st.in_shape[1 + a], size[a], stride[a], pad[a], 1) for a in (0, 1))
    if max(size) > 1024 or (nxt.shape[0],) + hw != tuple(nxt.shape):
        return False
    f = np.zeros((w2.shape[0], w1.shape[1]) + size)
    span = tuple((k1[a] - 1) * d1[a] + 1 for a in (0, 1))
    for a in range(k2[0]):
        for b in range(k2[1]):
            oa, ob = a * d2[0] * s1[0], b * d2[1] * s1[1]
            f[:, :, oa:oa + span[0]:d1[0], ob:ob + span[1]:d1[1]] += \
                np.einsum("om,mihw->oihw", w2[:, :, a, b], w1)
    bias = np.zeros(nxt.shape[0]) if nxt.bias is None else nxt.bias[:, 0, 0]
    if st.bias is not None:
        bias = bias + np.einsum("ochw,c->o", w2, st.bias[:, 0, 0])
    st.kind, st.weight, st.kernel, st.stride, st.padding = "conv", f, size, stride, pad
    st.dilation, st.groups, st.shape = (1, 1), 1, tuple(nxt.shape)
    st.bias = np.broadcast_to(bias.reshape(-1, 1, 1), st.shape).copy() \
        if (st.bias is not None or nxt.bias is not None) else None
    return True


def as_dense(st, name, node) -> None:
    """Turn the conv/pool stage ``st`` into the dense matrix of the same linear map over its
    flattened input, in place (file order: C, H, W)."""
    n_in, n_out = int(np.prod(st.in_shape)), int(np.prod(st.shape))
    if n_in * n_out > MAX_FUSED:
        raise fail(name, node, f"fusing {st.op_types[0]} {st.ops[0]!r} into a dense op needs "
                   f"a {n_out} x {n_in} matrix (limit {MAX_FUSED} elements)")
    eye = np.eye(n_in).reshape((n_in,) + tuple(st.in_shape))
    st.weight = synapse(st, eye, bias=False).reshape(n_in, n_out).T
    st.bias = None if st.bias is None else st.bias.reshape(-1)
    st.kind, st.in_shape, st.shape = "dense", (n_in,), (n_out,)
    st.kernel, st.stride, st.padding, st.dilation, st.groups = None, (1, 1), (0, 0), (1, 1), 1


def _compose(st, nxt, name, node) -> bool:
    """Fuse op ``nxt`` (applied after ``st``) into ``st`` in place: dense after dense
    (``W2 @ W1``), a pooling after a conv (one conv with kernel ``K + (k_p - 1) * s`` and
    stride ``s * s_p``: ``conv -> AvgPool2d -> LIF`` as snnTorch writes it), a conv after a
    conv or pooling (:func:`_fuse_convs`). ``st.notes`` records each fusion. False (``st``
    unchanged) where the two ops do not fuse."""
    before = f"{st.op_types[-1]} {st.ops[-1]!r}"
    note = f"{before} -> {type(node).__name__} {name!r}: fused into one {{}} (linear maps " \
           "compose; no neuron between)"
    if st.kind == "dense" and nxt.kind == "dense":
        b1 = st.bias if st.bias is not None else 0.0
        bias = nxt.weight @ np.broadcast_to(b1, (st.weight.shape[0],))
        if nxt.bias is not None:
            bias = bias + nxt.bias
        st.weight = nxt.weight @ st.weight
        st.bias = bias if (st.bias is not None or nxt.bias is not None) else None
        st.shape = nxt.shape
        st.notes.append(note.format(f"dense op {st.shape[0]} x {st.weight.shape[1]}"))
        return True
    if _fuse_convs(st, nxt):
        st.notes.append(note.format(f"conv, kernel {st.kernel}, stride {st.stride}, padding "
                                    f"{st.padding}"))
        return True
    if st.kind == "conv" and nxt.kind == "pool" and tuple(st.dilation) == (1, 1) \
            and tuple(nxt.padding) == (0, 0):
        (kh, kw), (sh, sw) = st.kernel, st.stride
        (ph, pw), pool = nxt.kernel, nxt.weight
        w = np.zeros(st.weight.shape[:2] + (kh + (ph - 1) * sh, kw + (pw - 1) * sw))
        for a in range(ph):
            for b in range(pw):
                w[:, :, a * sh:a * sh + kh, b * sw:b * sw + kw] += st.weight * pool[a, b]
        stride = (sh * nxt.stride[0], sw * nxt.stride[1])
        hw = tuple(conv_out(st.in_shape[1 + i], w.shape[2 + i], stride[i], st.padding[i], 1)
                   for i in (0, 1))
        if (st.shape[0],) + hw == tuple(nxt.shape):
            if st.bias is not None:
                st.bias = np.broadcast_to(st.bias[:, :1, :1] * pool.sum(), nxt.shape).copy()
            st.weight, st.kernel, st.stride, st.shape = w, tuple(w.shape[2:]), stride, nxt.shape
            st.notes.append(note.format(f"conv, kernel {st.kernel}, stride {st.stride}"))
            return True
    return False


EXACT_RTOL = 1e-6       # a float32 weight this close to its grid point counts as exact


def weight_bits_needed(w, max_bits: int = 8):
    """The fewest weight bits ``b`` (1..max_bits) at which the weights ``w`` are exact at some
    scale (integer multiples ``k`` of one step, ``-2**(b-1) <= k <= 2**(b-1) - 1``, the grid
    of :mod:`qblif.nir.quantize`); None when no width up to ``max_bits`` holds them."""
    w = np.asarray(w, np.float64).reshape(-1)
    m = float(np.max(np.abs(w))) if w.size else 0.0
    if m == 0:
        return 1
    probe = w[np.flatnonzero(w)[:4096]]               # a cheap first test (fused ops are big)
    for k in range(1, 2 ** (max_bits - 1) + 1):      # the largest |w| is k steps
        if not _on_grid(probe * (k / m)):
            continue
        x = w * (k / m)
        r = np.round(x)
        if _on_grid(x):
            b = 1 + int(math.ceil(math.log2(max(-float(r.min()), float(r.max()) + 1, 1.0))))
            return b if b <= max_bits else None     # the coarsest step: the fewest bits
    return None


def _on_grid(x) -> bool:
    """Whether every value of ``x`` is an integer (within :data:`EXACT_RTOL`)."""
    return bool(np.all(np.abs(x - np.round(x)) <= EXACT_RTOL * np.maximum(np.abs(x), 1.0)))


def relay_ints(w):
    """``(c, ints)``: the smallest ``c > 0`` with ``w * c`` integers in ``[0, MAX_RELAY]``
    (``ints``, int64) for the weights of a relay (:func:`_join`), or ``(None, why)``."""
    w = np.asarray(w, np.float64)
    if np.any(w < 0):
        return None, "its weights are mixed-sign, so the intermediate values are signed; a " \
            "relay carries burst counts 0..255"
    m = float(np.max(w)) if w.size else 0.0
    if m == 0:
        return None, "its weights are all zero"
    for k in range(1, MAX_RELAY + 1):
        x = w * (k / m)
        r = np.round(x)
        if np.all(np.abs(x - r) <= EXACT_RTOL * np.maximum(np.abs(x), 1.0)):
            return k / m, r.astype(np.int64)
    return None, f"its weights are not integer multiples of one step with at most " \
        f"{MAX_RELAY} steps"


def _as_relay(st) -> None:
    """Mark ``st`` (an op with no neuron after it) as a relay layer, in place: no neuron, its
    bias taken out (the caller folds it into the next op)."""
    st.relay, st.neuron, st.name = True, None, st.ops[0]


def _fold_relay_bias(relay, nxt) -> None:
    """The relay's bias ``b1`` folded into the next op ``nxt``: ``W2 (y + b1) + b2`` is
    ``W2 y + (W2 b1 + b2)``, per output (zero padding: ``W2 b1`` per position)."""
    if relay.bias is None:
        return
    b1 = np.broadcast_to(relay.bias, relay.shape)[None]
    extra = synapse(nxt, b1, bias=False)[0]
    nxt.bias = extra if nxt.bias is None else nxt.bias + extra
    relay.bias = None


def _join(out, pend, nxt, name, node, weight_bits, flat=None):
    """Op ``nxt`` (node ``name``) follows op stage ``pend`` with no neuron between (``flat``:
    the name of a Flatten between them). Fuse the two into one synapse when the composed
    weights are exact at ``weight_bits``; else, where that is exact and the fusion is not,
    make ``pend`` a *relay* layer (appended to ``out``; a memoryless QB-LIF that passes its
    intermediate integer values on as burst counts, docs/nir.md); else fuse anyway. Returns
    ``(stage being assembled, fused?)``; each choice is a line in its ``notes``."""
    t = type(node).__name__
    before = f"{pend.op_types[-1]} {pend.ops[-1]!r}" + (f" -> Flatten {flat!r}" if flat else "")
    fused, why_not = copy.deepcopy(pend), None
    try:
        if flat is not None:
            as_dense(fused, name, node)
            fused.ops.append(flat)
            fused.op_types.append("Flatten")
        if not _compose(fused, nxt, name, node):
            fused, why_not = None, "the two ops do not fuse into one synapse (supported: " \
                "dense after dense or after a flattened conv/pooling, pooling after an " \
                "undilated conv, conv after a conv or pooling where the second conv is " \
                "unpadded or the pooling tiles its input)"
    except CompileError as exc:
        fused, why_not = None, str(exc)
    c, relay_why = relay_ints(pend.weight)
    relay_ok = c is not None and pend.kind in ("dense", "conv", "pool")
    b2 = weight_bits_needed(nxt.weight, weight_bits)
    if relay_ok and b2 is None:
        relay_ok, relay_why = False, f"the weights of {t} {name!r} are not exact at " \
            f"{weight_bits} bits either"
    if fused is not None:
        bf = weight_bits_needed(fused.weight, weight_bits)
        if bf is not None or not relay_ok:
            need = f"exact at {bf} bits" if bf is not None else \
                f"need more than {weight_bits} bits (a relay would not be exact either: " \
                f"{relay_why})"
            fused.notes[-1] += f"; fused, not relayed: the composed weights are {need}"
            return fused, True
        why = f"fusing them would need more than {weight_bits} weight bits"
    else:
        if not relay_ok:
            raise fail(name, node, f"follows {before} with no neuron between: {why_not}; and "
                       f"a relay layer would not be exact: {relay_why}")
        why = why_not.split(" (supported")[0]
    _as_relay(pend)
    _fold_relay_bias(pend, nxt)
    out.append(pend)
    if flat is not None and len(pend.shape) > 1:
        out.append(Stage("flatten", flat, pend.shape, (int(np.prod(pend.shape)),)))
    nxt.ops, nxt.op_types = [name], [t]
    nxt.notes.append(f"{before} -> {t} {name!r}: relay layer {pend.name!r} between them ("
                     f"{why}; the relay passes its integer values on exactly, weights x "
                     f"{c:.6g}, and the {t} weights are exact at {b2} bits)")
    return nxt, False


def _bias_ramps(st, dt) -> bool:
    """Whether the op bias of CubaLIF stage ``st`` feeds a current with memory (``tau_syn !=
    dt``; dt None: unknown, assumed so), which a voltage bias cannot hold."""
    if dt is None:
        return True
    return bool(np.any(dt / param(st, "tau_syn", allow_inf=True, positive=True) != 1))


def _sources(st, bias: bool, shift, dt) -> list:
    """Always-on sources for dense stage ``st``, in place; returns the relay stages to put
    before it. Relay A passes the inputs on unchanged (weights ``[I; 0]``) and adds one
    neuron ``S`` that sends 1 every step (its bias 1).

    ``bias``: the op bias (into a CubaLIF, where NIR adds it to the synaptic current) becomes
    one more weight column on ``S``: the current gets ``W x + b`` from the first step on.

    ``shift``: a ``v_reset != 0`` (per output neuron) run in the frame ``v' = v - v_reset``
    (threshold ``v_th - v_reset``, leak target ``v_leak - v_reset``, reset to 0, as Loihi),
    where NIR's initial ``v = 0`` is ``v' = -v_reset``: Loihi starts at 0, so the first step
    must add ``delta = -(1 - dt/tau_mem) v_reset`` to the voltage and nothing after. Relay B
    passes A's outputs on and adds ``S_1`` (``S`` delayed 1 step: 1 from the sample's second
    step, the delay line forgetting at each sample's start) and, for a CubaLIF, ``S_2``
    (delayed 2); columns on ``S``, ``S_1``, ``S_2`` of ``delta / gain`` times ``1, -1, 0``
    (no current memory) or ``1, -(2 - a_u), 1 - a_u`` (a CubaLIF, ``a_u = dt/tau_syn``) put
    ``delta`` into the current on the first step only (``st.reset_weight``: those columns,
    which the float simulation leaves out: it runs NIR's own ``v_reset``)."""
    n = st.in_shape[0]
    a = Stage("dense", f"{st.ops[0]}.source", (n,), (n + 1,),
              weight=np.vstack([np.eye(n), np.zeros((1, n))]),
              bias=np.concatenate([np.zeros(n), [1.0]]), relay=True,
              ops=[f"{st.ops[0]}.source"], op_types=["always-on source"])
    relays, cols = [a], [np.zeros(st.shape[0]) if not bias else
                         np.broadcast_to(st.bias, st.shape).reshape(-1)]
    if bias:
        st.bias = None
        st.notes.append(f"bias of {st.op_types[0]} {st.ops[0]!r} into CubaLIF {st.name!r} (NIR "
                        "adds it to the synaptic current; Loihi's bias is the voltage's): one "
                        "more weight column, fed by the always-on neuron of relay layer "
                        f"{a.name!r}, which passes the inputs on and sends 1 every step")
    reset_cols = [np.zeros(st.shape[0])]
    if shift is not None:
        f = _frame_terms(st, dt)
        delta = -(1 - f["alpha_v"]) * shift / f["gain"]
        au = f["alpha_u"]
        taps = [1.0, -1.0] if au == 1 else [1.0, -(2 - au), 1 - au]
        m = len(taps) - 1
        b = Stage("dense", f"{st.ops[0]}.onset", (n + 1,), (n + 1 + m,),
                  weight=np.vstack([np.eye(n + 1)] + [np.eye(n + 1)[-1:]] * m), relay=True,
                  ops=[f"{st.ops[0]}.onset"], op_types=["first-step source"])
        b.delay = np.concatenate([np.zeros(n + 1, np.int64), np.arange(1, m + 1)])
        relays.append(b)
        reset_cols = [delta * k for k in taps]
        cols = [cols[0] + reset_cols[0]] + reset_cols[1:]
        st.notes.append(f"v_reset != 0 of {st.name!r}: run in the frame v' = v - v_reset "
                        "(threshold v_th - v_reset, leak target v_leak - v_reset, reset to 0); "
                        "NIR's initial v = 0 is v' = -v_reset, added on the first step of each "
                        f"sample by {len(taps)} weight columns on the always-on neuron and its "
                        f"copies delayed 1..{m} steps (relay layer {b.name!r})")
    st.reset_weight = np.hstack([np.zeros_like(st.weight)] + [c.reshape(-1, 1)
                                                             for c in reset_cols])
    st.weight = np.hstack([st.weight] + [c.reshape(-1, 1) for c in cols])
    st.in_shape, st.n_inputs = (st.weight.shape[1],), n
    return relays


def _frame_terms(st, dt) -> dict:
    """``alpha_u``, ``alpha_v``, ``gain`` (per output) of a LIF/IF/CubaLIF stage (the rules of
    :mod:`qblif.nir.quantize`)."""
    t, one = st.neuron_type, np.ones(st.shape)
    if t == "CubaLIF":
        au = dt / param(st, "tau_syn", allow_inf=True, positive=True)
        av = dt / param(st, "tau_mem", allow_inf=True, positive=True)
        gain = au * param(st, "w_in", 1.0) * av * param(st, "r")
    elif t == "LIF":
        au, av = one, dt / param(st, "tau", allow_inf=True, positive=True)
        gain = av * param(st, "r")
    else:
        au, av, gain = one, 0 * one, dt * param(st, "r")
    if np.ptp(au) or np.ptp(av):
        raise fail(st.name, st.neuron, "per-neuron time constants are unsupported: Loihi "
                   "decays are per layer")
    if np.any(gain == 0) or not np.all(np.isfinite(gain)):
        raise fail(st.name, st.neuron, "v_reset != 0 needs a finite, non-zero input gain")
    return dict(alpha_u=float(au.reshape(-1)[0]), alpha_v=float(av.reshape(-1)[0]), gain=gain)


def v_reset(st):
    """The ``v_reset`` of a LIF/IF/CubaLIF stage per output neuron where any is non-zero,
    else None."""
    if st.neuron_type not in ("LIF", "IF", "CubaLIF") or \
            getattr(st.neuron, "v_reset", None) is None:
        return None
    r = param(st, "v_reset").reshape(-1)
    return r if np.any(r != 0) else None


def _delay_steps(name, node, dt) -> np.ndarray:
    """A NIR ``Delay``'s ``delay`` (seconds, per neuron) in steps of ``dt`` (int64): each must
    be an integer number of steps (relative tolerance 1e-6, float32 files) in
    ``[0, MAX_AXON_DELAY]``, else one CompileError naming the node and the value."""
    d = array(name, node, "delay")
    if dt is None:
        raise fail(name, node, "a Delay needs the time step dt")
    x = d / dt
    n = np.round(x)
    bad = np.abs(x - n) > 1e-6 * np.maximum(np.abs(x), 1.0)
    if np.any(bad):
        v = float(d.reshape(-1)[np.argmax(bad.reshape(-1))])
        raise fail(name, node, f"delay {v:g} s is {v / dt:g} steps of dt={dt:g}: not an "
                   "integer number of steps")
    if np.any(n < 0) or np.any(n > MAX_AXON_DELAY):
        raise fail(name, node, f"delays of {int(n.min())}..{int(n.max())} steps (dt={dt:g}) "
                   f"are out of Loihi's axonal delay range [0, {MAX_AXON_DELAY}]")
    return n.astype(np.int64)


def _recurrent(st, name, node) -> None:
    """Attach the recurrent op ``node`` (the neuron's output back to its input) to the dense
    stage ``st``: ``weight_rec`` ``(out, out)``; an Affine bias adds to the stage bias."""
    if st.kind != "dense":
        raise fail(name, node, f"a recurrent edge onto {st.name!r}, whose op {st.ops[0]!r} is "
                   f"a {st.kind}: the IR's recurrent layer is dense")
    n = st.shape[0]
    w = array(name, node, "weight")
    if w.shape != (n, n):
        raise fail(name, node, f"recurrent weight has shape {w.shape}, expected ({n}, {n})")
    st.weight_rec = w
    if type(node).__name__ == "Affine":
        b = array(name, node, "bias").reshape(-1)
        if b.size not in (1, n):
            raise fail(name, node, f"bias has {b.size} values, expected {n}")
        st.bias = (0.0 if st.bias is None else st.bias) + np.broadcast_to(b, (n,))
    st.ops.append(name)
    st.op_types.append(type(node).__name__ + " (recurrent)")


def _check_declared(name, node, shape):
    """A node's declared output type (where it states one) must match the inferred shape."""
    t = getattr(node, "output_type", None)
    if not isinstance(t, dict):
        return
    for v in t.values():
        if v is None:
            continue
        try:
            want = tuple(int(s) for s in np.asarray(v).reshape(-1))
        except (TypeError, ValueError, OverflowError):
            continue
        if want and int(np.prod(want)) != int(np.prod(shape)):
            raise fail(name, node, f"declares output shape {want}, but its input gives {shape}")


def stages(graph, input_scale: float = 1.0, weight_bits: int = 8, dt=None) -> tuple:
    """``(input_shape, [Stage, ...])`` of a NIR graph, or a CompileError. ``input_scale``
    (the graph receives ``frame * input_scale``) is folded into the first op's weights.
    ``weight_bits`` decides fusion against relay layers; ``dt`` (None: unknown) whether a
    dense bias into a ``CubaLIF`` needs an always-on source (:func:`_sources`)."""
    order, rec = chain_parts(graph)
    first_op = next((type(n).__name__ for _, n in order[1:]
                     if type(n).__name__ in SYNAPSES), None)
    shape = _input_shape(*order[0], first_op)
    in_shape = cur = shape
    out, pend = [], None          # pend: the stage being assembled (op seen, neuron not yet)
    pend_flat = None              # a Flatten seen after pend's op (a dense op must follow)
    pre_scale = []
    in_delay = None               # (name, steps): a Delay before the next op (its inputs)
    for name, node in order[1:]:
        t = type(node).__name__
        if t == "Delay":
            steps = _delay_steps(name, node, dt)
            if steps.size not in (1, int(np.prod(pend.shape if pend is not None else cur))):
                raise fail(name, node, f"delay of {steps.size} values does not fit its input "
                           f"{pend.shape if pend is not None else cur}")
            if pend is None:      # the inputs of the next op: one delay for all
                if np.ptp(steps):
                    raise fail(name, node, "per-input delays that differ (before a synaptic "
                               "op) need per-synapse delays, Lava's DelayDense, whose buffer "
                               "is not cleared between samples; a Delay between an op and "
                               "its neuron (per output) may differ")
                prev = 0 if in_delay is None else in_delay[1]
                in_delay = (name, prev + int(steps.reshape(-1)[0]))
            else:
                if pend_flat is not None:
                    raise fail(name, node, "a Delay between a Flatten and a synaptic op is "
                               "unsupported")
                per = np.broadcast_to(steps.reshape(-1) if steps.size > 1 else steps.reshape(
                    -1)[0], (int(np.prod(pend.shape)),)).reshape(pend.shape)
                pend.delay = per if pend.delay is None else pend.delay + per
                pend.delay_after = True
                pend.ops.append(name)
                pend.op_types.append(t)
            continue
        if t == "Output":
            if in_delay is not None:
                raise fail(in_delay[0], "Delay", "a Delay after the last neuron is unsupported "
                           "(the compiled network outputs that neuron's counts)")
            if pend is not None or pre_scale:
                last = pend.ops[-1] if pend else pre_scale[-1][0]
                raise fail(name, node, f"follows the synaptic op {last!r} with no neuron "
                           "between: the compiled network outputs a neuron layer's counts")
            t_in = getattr(node, "input_type", None)
            _check_declared(name, type("Output", (), {"output_type": t_in})(), cur)
            break
        if t == "Scale":
            if pend is None:
                pre_scale.append((name, node))
            else:
                _fold_scale(name, node, pend, after=True)
                pend.ops.append(name)
                pend.op_types.append(t)
            continue
        if t in SYNAPSES:
            flat = pend_flat
            if pend_flat is not None:  # conv/pool -> Flatten -> dense: one dense op
                if t not in ("Affine", "Linear"):
                    raise fail(name, node, f"follows Flatten {pend_flat!r} after the synaptic "
                               f"op {pend.ops[-1]!r} with no neuron between: only a dense op "
                               "fuses there")
                pend_flat = None
            if pend is not None:       # two linear ops in a row: fuse, or relay where exact
                if pend.delay_after:
                    raise fail(name, node, f"follows a Delay after the synaptic op "
                               f"{pend.ops[0]!r}: a Delay between two synaptic ops is "
                               "unsupported")
                in_shape_pend = pend.in_shape
                nxt = _synapse(name, node, (int(np.prod(pend.shape)),) if flat else pend.shape)
                pend, fused = _join(out, pend, nxt, name, node, weight_bits, flat)
                if fused:
                    if flat is not None and len(in_shape_pend) > 1:
                        out.append(Stage("flatten", flat, in_shape_pend,
                                         (int(np.prod(in_shape_pend)),)))
                    pend.ops.append(name)
                    pend.op_types.append(t)
                _check_declared(name, node, pend.shape)
                continue
            pend = _synapse(name, node, cur)
            pend.ops, pend.op_types = [name], [t]
            if in_delay is not None:   # one delay on every input: the same per output
                pend.delay = np.full(pend.shape, in_delay[1], np.int64)
                pend.ops.append(in_delay[0])
                pend.op_types.append("Delay")
                in_delay = None
            for sn, snode in pre_scale:
                _fold_scale(sn, snode, pend, after=False)
                pend.ops.append(sn)
                pend.op_types.append("Scale")
            pre_scale = []
            _check_declared(name, node, pend.shape)
            continue
        if t == "Flatten":
            if pend is not None and pend_flat is None and not pre_scale:
                pend_flat = name       # fused with the dense op that must follow
                continue
            if pend is not None or pre_scale:
                raise fail(name, node, "a Flatten between a synaptic op and its neuron is "
                           "unsupported")
            flat = (int(np.prod(cur)),)
            if flat != cur:
                out.append(Stage("flatten", name, cur, flat))
            cur = flat
            continue
        if t in NEURONS:
            if pend_flat is not None:
                raise fail(name, node, f"follows Flatten {pend_flat!r} after the synaptic op "
                           f"{pend.ops[-1]!r}: a Flatten between a synaptic op and its neuron "
                           "is unsupported")
            if pend is None:
                raise fail(name, node, "needs a synaptic op (Affine, Linear, Conv, Pool) "
                           "before it: every IR layer is a synapse plus a neuron")
            pend.neuron, pend.name = node, name
            if name in rec:
                if pend.delay is not None:
                    raise fail(name, node, "a Delay into a recurrent layer is unsupported (the "
                               "IR delays a recurrent layer's spikes, not its input)")
                _recurrent(pend, *rec[name])
            _check_declared(name, node, pend.shape)
            biased = pend.bias is not None and np.any(pend.bias)
            source = t == "CubaLIF" and pend.kind == "dense" and biased and _bias_ramps(pend, dt)
            shift = v_reset(pend)
            if shift is not None:
                why = "the first-step correction needs one more input per neuron: dense ops " \
                    "only" if pend.kind != "dense" else "a Delay on the layer would delay " \
                    "the first-step correction" if pend.delay is not None else None
                if why or dt is None:
                    raise fail(name, node, "v_reset != 0 is mapped by shifting the voltage by "
                               f"v_reset, which needs a correction on each sample's first "
                               f"step; {why or 'needs the time step dt'}")
            if pend.delay is not None:
                if pend.kind == "pool":
                    raise fail(name, node, f"a Delay into the pooling {pend.ops[0]!r}: Loihi "
                               "axonal delays are on dense and conv synapses")
                if biased and (pend.delay_after or source):
                    raise fail(name, node, f"a Delay after the biased op {pend.ops[0]!r} "
                               "(NIR delays the bias too, absent for the first steps; Loihi's "
                               "bias is not delayed)")
            if source or shift is not None:
                out.extend(_sources(pend, source, shift, dt))
            out.append(pend)
            cur, pend = pend.shape, None
            continue
        raise fail(name, node, f"{t} is not supported inside the chain")
    if not any(st.kind != "flatten" for st in out):
        raise CompileError("NIR graph: no neuron layer (nothing to compile)")
    first = next(st for st in out if st.kind != "flatten" and not st.relay)
    if first.n_inputs is not None:  # source columns are no input (a relay before: same sums)
        k = first.n_inputs
        first.weight = np.hstack([first.weight[:, :k] * input_scale, first.weight[:, k:]])
    else:
        first.weight = first.weight * input_scale
    if out[-1].kind == "flatten":
        raise CompileError(f"NIR node {out[-1].name!r} (Flatten): the graph ends in a Flatten")
    for st in out[:-1]:
        if st.neuron_type == "LI":
            raise fail(st.name, st.neuron, "an LI (non-spiking) node is supported only as the "
                       "readout, the last layer")
    return in_shape, out
