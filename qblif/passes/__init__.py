"""The compiler passes, in order. Each is a function ``IR -> IR`` (the graph is updated in
place and returned) with a contract (:func:`declare`): ``requires``, ``reads``, ``writes``,
``ensures``, as names ``graph.<key>``, ``layer.<field>``, ``edge.<key>``. :data:`PASSES` is
the one place that orders them; :func:`run_passes` checks each contract as the pass runs:
what it requires is present before it, the layer fields and graph keys it reads are declared,
everything it changed (compared by content, in place or not) is among its writes (so
``validate``, which writes nothing, is checked to change nothing), and what it ensures is
present after it."""
from __future__ import annotations

import dataclasses
import hashlib
import zlib

import numpy as np

from qblif.core.errors import CompileError
from qblif.ir import Layer, layers, trace_reads
from qblif.passes.declare import declare  # noqa: F401  (re-exported)
from qblif.passes.validate import normalize, validate
from qblif.passes.shapes import infer_shapes
from qblif.passes.quantize import quantize
from qblif.passes.messages import assign_message_bits
from qblif.passes.lower import lower_bursts
from qblif.passes.resources import estimate_resources
from qblif.passes.mapping import map_to_chip
from qblif.passes.plan import plan_emission

PASSES = [
    validate,             # kinds, keys, ranges, unsupported features (pure)
    normalize,            # defaults: per-neuron vth/bias broadcasts, bias_exp, pool stride
    infer_shapes,         # in_shape per layer, weight/shape consistency
    quantize,             # NetX weight exponent / bits per synapse, exactness
    assign_message_bits,  # one Message per edge: QBLIF bit_length(K), CUBA binary, input
    lower_bursts,         # synapse weights in Lava layout with thermometer lanes
    estimate_resources,   # neurons, synapses, fan-in/out
    map_to_chip,          # pieces on Loihi 2 cores and chips (docs/mapping.md)
    plan_emission,        # Lava process per layer, per-layer reset offsets
]

# what the reader provides (qblif.ir.from_netx): every layer's own fields, the file's metadata
# (input_shape and timesteps where the file has them: passes read them, none requires them)
READER_PROVIDES = frozenset({"layer.kind", "layer.shape", "layer.weight", "layer.bias",
                             "layer.neuron", "layer.kernel", "layer.stride", "layer.padding",
                             "layer.dilation", "layer.groups", "layer.delay", "layer.weight_rec", "layer.weight_imag",
                             "graph.input_bits", "graph.encoding", "graph.path",
                             "graph.input_shape", "graph.timesteps"})
DEFAULTS = {f.name: (f.default if f.default is not dataclasses.MISSING else f.default_factory())
             for f in dataclasses.fields(Layer)
             if f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING}


def present(g) -> set:
    """Names (``graph.*``, ``layer.*``, ``edge.*``) the graph holds; a layer field counts once
    some layer holds a value other than its default."""
    out = {f"graph.{k}" for k in g.graph}
    for ly in layers(g):
        for f in dataclasses.fields(Layer):
            v = getattr(ly, f.name)
            if f.name not in DEFAULTS or not same(v, DEFAULTS[f.name]):
                out.add(f"layer.{f.name}")
    for _, _, d in g.edges(data=True):
        out.update(f"edge.{k}" for k in d)
    return out


def same(a, b) -> bool:
    """``a == b`` for plain values (arrays never equal a default)."""
    try:
        return bool(a == b) if not hasattr(a, "shape") else False
    except (ValueError, TypeError):
        return False


def fingerprint(value) -> str:
    """A digest of ``value``'s content: arrays by dtype, shape and a CRC-32 of their bytes,
    records and containers field by field (so an in-place rewrite shows)."""
    h = hashlib.blake2b(digest_size=16)

    def feed(v):
        if hasattr(v, "dtype") and hasattr(v, "shape"):
            a = np.ascontiguousarray(v)
            crc = zlib.crc32(a.data if a.dtype != object else repr(a.tolist()).encode())
            h.update(f"{a.dtype}{a.shape}{crc}".encode())    # crc32: 5x blake2b's speed
        elif dataclasses.is_dataclass(v) and not isinstance(v, type):
            h.update(type(v).__name__.encode())
            for f in dataclasses.fields(v):
                h.update(f.name.encode())
                feed(object.__getattribute__(v, f.name))
        elif isinstance(v, dict):
            for k in sorted(v, key=repr):
                h.update(repr(k).encode())
                feed(v[k])
        elif isinstance(v, (list, tuple)):
            h.update(f"{type(v).__name__}{len(v)}".encode())
            for x in v:
                feed(x)
        else:
            h.update(repr(v).encode())
    feed(value)
    return h.hexdigest()


def snapshot(g) -> dict:
    """``{name: digest}`` of every graph key, layer field (per layer) and edge key."""
    out = {f"graph.{k}": fingerprint(v) for k, v in g.graph.items()}
    for i in sorted(g.nodes):
        ly = g.nodes[i]["layer"]
        for f in dataclasses.fields(Layer):
            out[(f"layer.{f.name}", i)] = fingerprint(object.__getattribute__(ly, f.name))
    for u, v, d in g.edges(data=True):
        for k, val in d.items():
            out[(f"edge.{k}", u, v)] = fingerprint(val)
    return out


def changed(before: dict, after: dict) -> set:
    """Names whose content differs, or that appeared or vanished, between two snapshots."""
    keys = set(before) | set(after)
    return {k if isinstance(k, str) else k[0] for k in keys
            if before.get(k) != after.get(k)}


class TracedDict(dict):
    """``g.graph`` while a pass runs: records the keys it reads."""

    def __init__(self, *args):
        super().__init__(*args)
        self.seen = set()

    def __getitem__(self, key):
        self.seen.add(key)
        return super().__getitem__(key)

    def get(self, key, default=None):
        self.seen.add(key)
        return super().get(key, default)

    def __contains__(self, key):
        self.seen.add(key)
        return super().__contains__(key)


def check_order(passes=PASSES) -> None:
    """Static check: each pass requires and reads only what the reader or an earlier pass
    writes (or, for reads, what it writes itself), and ensures only what it writes."""
    have = set(READER_PROVIDES)
    for p in passes:
        missing = ((set(p.reads) - set(p.writes)) | set(p.requires)) - have
        if missing:
            raise AssertionError(f"pass {p.__name__} reads {sorted(missing)} before any "
                                 "pass writes them")
        if not set(p.ensures) <= set(p.writes):
            raise AssertionError(f"pass {p.__name__} ensures what it does not write")
        have |= set(p.writes)


check_order()


def run_pass(p, g, before: dict = None) -> tuple:
    """Run one pass and check its contract (see the module docstring). ``before``: the
    graph's :func:`snapshot` if the caller has it. Returns ``(graph, its snapshot after the
    pass)``: the next pass's ``before``."""
    has_edges = g.number_of_edges() > 0
    missing = {r for r in p.requires if r.startswith("graph.")
               or (r.startswith("edge.") and has_edges)} - present(g)
    if missing:
        raise CompileError(f"pass {p.__name__} needs {sorted(missing)}, absent")
    before = snapshot(g) if before is None else before
    g.graph = TracedDict(g.graph)
    try:
        with trace_reads() as fields_read:
            out = p(g)
    finally:
        graph_read = g.graph.seen if isinstance(g.graph, TracedDict) else set()
        g.graph = dict(g.graph)
    if out is not g:
        out.graph = dict(out.graph)
    allowed = set(p.reads) | set(p.writes) | {"layer.index"}    # a layer's identity
    undeclared = ({f"layer.{f}" for f in fields_read} | {f"graph.{k}" for k in graph_read}) \
        - allowed
    if undeclared:
        raise AssertionError(f"pass {p.__name__} read {sorted(undeclared)} without "
                             "declaring it")
    after = snapshot(out)
    wrote = changed(before, after) - set(p.writes)
    if wrote:
        raise AssertionError(f"pass {p.__name__} changed {sorted(wrote)} without declaring it")
    absent = {e for e in p.ensures if not e.startswith("edge.") or out.number_of_edges()} \
        - present(out)
    if absent:
        raise AssertionError(f"pass {p.__name__} ensures {sorted(absent)}, absent after it")
    return out, after


def run_passes(g, passes=PASSES):
    """Run ``passes`` in order, each checked against its contract (:func:`run_pass`)."""
    before = None
    for p in passes:
        g, before = run_pass(p, g, before)
    return g
