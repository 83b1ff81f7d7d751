"""The compiler passes, in order. Each is a function ``IR -> IR`` (the graph is updated in
place and returned) that declares what it reads and writes (:func:`declare`), as names
``graph.<key>``, ``layer.<field>``, ``edge.<key>``. This list is the one place that orders
them; :func:`run_passes` checks every declaration as it runs: a pass's reads must be
present before it, and whatever it adds must be among its writes."""
from __future__ import annotations

import dataclasses

from qblif.core.errors import CompileError
from qblif.ir import Layer, layers
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
READER_PROVIDES = frozenset({"layer.kind", "layer.shape", "layer.weight", "layer.bias",
                             "layer.neuron", "layer.kernel", "layer.stride", "layer.padding",
                             "layer.dilation", "layer.groups", "layer.delay", "layer.weight_rec", "layer.weight_imag",
                             "graph.input_bits", "graph.encoding", "graph.path"})
_DEFAULTS = {f.name: (f.default if f.default is not dataclasses.MISSING else f.default_factory())
             for f in dataclasses.fields(Layer)
             if f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING}


def present(g) -> set:
    """Names (``graph.*``, ``layer.*``, ``edge.*``) the graph holds; a layer field counts once
    some layer holds a value other than its default."""
    out = {f"graph.{k}" for k in g.graph}
    for ly in layers(g):
        for f in dataclasses.fields(Layer):
            v = getattr(ly, f.name)
            if f.name not in _DEFAULTS or not _same(v, _DEFAULTS[f.name]):
                out.add(f"layer.{f.name}")
    for _, _, d in g.edges(data=True):
        out.update(f"edge.{k}" for k in d)
    return out


def _same(a, b) -> bool:
    try:
        return bool(a == b) if not hasattr(a, "shape") else False
    except (ValueError, TypeError):
        return False


def check_order(passes=PASSES) -> None:
    """Static check: each pass reads only what the reader or an earlier pass writes."""
    have = set(READER_PROVIDES)
    for p in passes:
        missing = set(p.reads) - have
        if missing:
            raise AssertionError(f"pass {p.__name__} reads {sorted(missing)} before any "
                                 "pass writes them")
        have |= set(p.writes)


check_order()


def run_passes(g, passes=PASSES):
    """Run ``passes`` in order, checking each one's declared reads and writes (edge reads only
    where the graph has edges: a one-layer network has none)."""
    for p in passes:
        before = present(g)
        missing = {r for r in p.reads if r.startswith("graph.")
                   or (r.startswith("edge.") and g.number_of_edges())} - before
        if missing:
            raise CompileError(f"pass {p.__name__} needs {sorted(missing)}, absent")
        g = p(g)
        added = present(g) - before - set(p.writes)
        if added:
            raise AssertionError(f"pass {p.__name__} wrote {sorted(added)} without declaring it")
    return g
