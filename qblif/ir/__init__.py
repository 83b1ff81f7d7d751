"""Graph IR: a ``networkx.DiGraph`` of small typed records.

Nodes are keyed by the NetX layer index ``i`` (``/layer/<i>``) and carry ``layer``: a
:class:`Layer` (with its :class:`Neuron`, and after ``quantize`` its :class:`Synapse`).
Edges ``(i, j)`` carry ``message``: the one :class:`Message` record of what an event from
i to j holds (set by ``assign_message_bits``), and ``recurrent`` (True for a layer's
edge onto itself, e.g. ``dense_rec``; every other edge runs forward in index order).
Graph attributes (``g.graph``): ``path``, ``input_shape``, ``input_bits``, ``timesteps``,
``dataset``, ``encoding``, and what later passes add (each pass declares them:
:data:`qblif.passes.PASSES`).

Shape convention: the file's (lava-dl / torch) order, ``(C, H, W)`` for 3-D layers and
``(N,)`` for 1-D ones; the emitter converts to Lava's ``(W, H, C)``.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass, field, fields
from typing import Iterator, Optional

import networkx as nx
import numpy as np

from qblif.core.errors import CompileError

LAYER_KINDS = ("input", "dense", "conv", "pool", "flatten", "average")
#: the process a layer runs as (``Layer.proc``, set by ``plan_emission``): Lava's own
#: neuron processes, ours (QBLIF, GradedLIF, BiasNeuron), and ``host`` (an average read out
#: on the host)
PROCS = ("QBLIF", "LIF", "GradedLIF", "BiasNeuron", "ATRLIF", "RF", "RF_IZ", "SigmaDelta",
         "Sigma", "Delta", "host")
SYNAPTIC_KINDS = ("dense", "conv", "pool")
from qblif.core.constants import ENCODINGS  # noqa: E402 (re-exported)


@dataclass(frozen=True)
class Message:
    """What one event on an edge carries (spec section 4), stored once per edge.

    bits: payload bits of one value (0: a 1-bit binary spike; QB-LIF ``bit_length(K)``;
    the input ``input_bits``; SDNN ``messageBits``). max: the largest value (K; 1 for a
    spike; 0 for SDNN's unbounded signed values). signed: values may be negative (SDNN).
    graded_only: has no thermometer code, stays graded in every encoding (SDNN).
    encoding: the burst encoding the synapse receives (``graded`` or ``binary``).
    scale_exp: the receiving synapse divides its sum by ``2**scale_exp`` (floor): 6 for a
    graded-spike CUBA's voltage payload (``v >> 6``), else 0.
    """
    bits: int
    max: int
    signed: bool = False
    graded_only: bool = False
    encoding: str = "graded"
    scale_exp: int = 0

    def __post_init__(self):
        if self.bits < 0 or self.max < 0 or self.encoding not in ENCODINGS:
            raise ValueError(f"invalid message {self}")

    @property
    def lanes(self) -> int:
        """Parallel 1-bit lanes per value (``binary`` encoding of values > 1), else 1."""
        if self.encoding == "binary" and not self.graded_only and self.max > 1:
            return self.max
        return 1

    @property
    def wire_bits(self) -> int:
        """``num_message_bits`` of the receiving Lava synapse (0: 1-bit events)."""
        if self.graded_only:
            return self.bits
        return 0 if self.encoding == "binary" else self.bits


@dataclass
class Synapse:
    """A layer's synapse as handed to Lava (set by ``quantize``, laid out by ``lower_bursts``).

    weight: int weights; after ``quantize`` the NetX-scaled file-order matrix (dense) or the
    file weights (conv/pool); after ``lower_bursts`` Lava's layout with the input's lanes
    tiled in (dense ``(out, in*lanes)``; conv ``(C_out, kW, kH, C_in*lanes/groups)``).
    exp: Lava ``weight_exp`` (dense; 0 for conv); bits: ``num_weight_bits``; groups: conv
    groups (pool: one per channel). delay: axonal delays in steps (dense ``(out, in)``, conv
    the layer's shape; file order) or None. weight_rec: a recurrent dense layer's
    ``(out, out)`` weights onto itself (same exponent and bits, as stock NetX) or None.
    imag: a complex dense layer's imaginary weights, a Synapse of their own (quantized apart,
    as stock NetX's ComplexDense); ``weight`` is then the real part.
    """
    weight: np.ndarray
    exp: int = 0
    bits: int = 8
    groups: int = 1
    delay: Optional[np.ndarray] = None
    weight_rec: Optional[np.ndarray] = None
    imag: Optional["Synapse"] = None   # complex (RF) dense: the imaginary part's synapse


@dataclass
class Neuron:
    """Neuron parameters in Loihi fixed-point units (spec section 1).

    ``vth`` and ``bias_mant`` are ints or arrays of the layer's shape (per-neuron,
    after the ``normalize`` pass broadcasts per-channel values); ``kind`` is ``QBLIF`` or
    ``CUBA`` (``LOIHI`` is read as ``CUBA``) or ``SDNN``. CUBA is a QB-LIF with
    ``max_burst=1`` and ``reset_mode="zero"``. SDNN uses ``vth`` (scalar ``vThMant``),
    ``message_bits`` (default 16, as stock NetX), ``bias_mant`` and the SDNN fields below.
    """
    kind: str
    du: int
    dv: int
    vth: object
    bias_mant: object = 0
    bias_exp: int = 0
    max_burst: int = 1
    reset_mode: str = "zero"
    ref_delay: int = 1
    message_bits: Optional[int] = None   # as written in the file, if any
    raw: dict = field(default_factory=dict)  # the group's datasets, for validation
    # SDNN (sigma-delta) only, read as stock NetX reads them: ``sigma_output`` (the
    # key is present: a Lava ``Sigma`` accumulator, no threshold), ``activation``
    # (lava-dl writes the torch function's name; Lava's SigmaDelta runs ReLU).
    sigma_output: bool = False
    activation: str = "relu"
    # model-specific parameters, as read: ALIF (lava-dl's adaptive LIF, run as Lava's
    # ATRLIF): ``thDecay``, ``refDecay`` (12-bit decays of the threshold excess and the
    # refractory state), ``vThStep`` (threshold increase per spike, a mantissa like
    # ``vThMant``); RF (resonate-and-fire, Lava's RF): ``sinDecay``, ``cosDecay``.
    params: dict = field(default_factory=dict)

    @property
    def graded_spike(self) -> bool:
        """A CUBA neuron that sends its voltage ``v >> 6`` as a graded spike (lava-dl's
        ``gradedSpike``; the one reader of that raw key)."""
        return self.kind == "CUBA" and bool(self.raw.get("gradedSpike"))


#: the Layer fields read while :func:`trace_reads` is active (None: not tracing)
_READS: Optional[set] = None


@contextlib.contextmanager
def trace_reads() -> Iterator[set]:
    """Collect the names of the :class:`Layer` fields read inside the block (the pass manager
    checks them against a pass's declared reads)."""
    global _READS
    outer, _READS = _READS, set()
    try:
        yield _READS
    finally:
        _READS = outer


class _Traced:
    """Mixin: records each dataclass field read into :data:`_READS` while tracing."""

    def __getattribute__(self, name):
        reads = _READS
        if reads is not None and name in type(self).FIELDS:
            reads.add(name)
        return object.__getattribute__(self, name)


@dataclass
class Layer(_Traced):
    """One NetX layer.

    weight: integer weight mantissas as read (dense ``(out, in)``, conv
    ``(C_out, C_in/groups, kH, kW)``, pool ``(kH, kW)``), int64.
    shape: output shape (file order); in_shape: filled by shape inference.
    kernel/stride/padding/dilation: ``(H, W)`` pairs; groups int.
    Fields filled by passes: ``in_shape``, ``synapse`` (:class:`Synapse`), ``depth``
    (number of synaptic layers up to and including this one), ``proc`` (Lava process
    kind), ``reset_offset``, ``resources`` (dict).
    """
    index: int
    kind: str
    shape: tuple
    weight: Optional[np.ndarray] = None
    bias: Optional[np.ndarray] = None
    neuron: Optional[Neuron] = None
    kernel: Optional[tuple] = None
    stride: tuple = (1, 1)
    padding: tuple = (0, 0)
    dilation: tuple = (1, 1)
    groups: int = 1
    delay: Optional[np.ndarray] = None
    weight_rec: Optional[np.ndarray] = None   # dense_rec: (out, out) recurrent weights
    weight_imag: Optional[np.ndarray] = None  # complex dense (RF): weight is the real part
    in_shape: Optional[tuple] = None
    synapse: Optional[Synapse] = None
    depth: int = 0
    proc: Optional[str] = None
    resources: dict = field(default_factory=dict)
    reset_offset: int = 0
    fan_out_vec: Optional[np.ndarray] = None   # non-zero synapses per presynaptic value

    FIELDS = frozenset()    # set below: the names recorded by trace_reads

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))

    @property
    def synaptic(self) -> bool:
        return self.kind in SYNAPTIC_KINDS

    @property
    def max_burst(self) -> int:
        """Largest count per step this layer emits (K; 1 for CUBA)."""
        return int(self.neuron.max_burst) if self.neuron is not None else 0

    # read-only views kept for callers of the former flat fields
    @property
    def weight_exp(self) -> int:
        return int(self.synapse.exp) if self.synapse is not None else 0

    @property
    def weight_bits(self) -> int:
        return int(self.synapse.bits) if self.synapse is not None else 8


Layer.FIELDS = frozenset(f.name for f in fields(Layer))


def new_graph(**attrs) -> nx.DiGraph:
    g = nx.DiGraph()
    g.graph.update(attrs)
    return g


def layers(g: nx.DiGraph):
    """Layer records in index order."""
    return [g.nodes[i]["layer"] for i in sorted(g.nodes)]


def synaptic_layers(g: nx.DiGraph):
    """Layers with a synapse (dense, conv, pool), in index order."""
    return [ly for ly in layers(g) if ly.synaptic]


def forward_preds(g: nx.DiGraph, i: int) -> list:
    """Predecessors of ``i`` over forward (non-recurrent) edges."""
    return [u for u in g.predecessors(i) if not g.edges[u, i].get("recurrent")]


def producer(g: nx.DiGraph, i: int):
    """The layer whose output feeds layer ``i`` (skipping flatten); None for the input."""
    preds = forward_preds(g, i)
    if not preds:
        return None
    p = g.nodes[preds[0]]["layer"]
    return producer(g, p.index) if p.kind == "flatten" else p


def frame_consumer(g: nx.DiGraph):
    """The layer whose input is the frames: an input layer with a neuron (an encoder, a
    bias-driven input), else the first synaptic layer; None for a graph without either."""
    order = layers(g)
    if order and order[0].kind == "input" and order[0].neuron is not None:
        return order[0]
    syn = [ly for ly in order if ly.synaptic]
    return syn[0] if syn else None


def in_message(g: nx.DiGraph, i: int) -> Message:
    """The :class:`Message` on layer ``i``'s forward input edge (the first layer: the frame
    source's, ``g.graph["input_message"]``)."""
    preds = forward_preds(g, i)
    return g.edges[preds[0], i]["message"] if preds else g.graph["input_message"]


def check_graph(g: nx.DiGraph) -> None:
    """Structural checks: nodes keyed by their layer index, every edge forward in index
    order except marked recurrent self-loops, no cycle over forward edges."""
    for i in g.nodes:
        ly = g.nodes[i].get("layer")
        if not isinstance(ly, Layer) or ly.index != i:
            raise CompileError("node is not the Layer of its index", i, "layer")
    for u, v, d in g.edges(data=True):
        if d.get("recurrent"):
            if u != v:
                raise CompileError(f"recurrent edge {u}->{v} is not a self-loop", v, "type")
        elif u >= v:
            raise CompileError(f"edge {u}->{v} runs backwards and is not marked recurrent",
                               v, "type")


def per_synapse_delays(delay) -> bool:
    """Delays that differ within a row (per input): only Lava's ``DelayDense`` has them.
    One delay per output neuron (lava-dl's axonal delay) is a :class:`DelayLine` after the
    synapse: the same sums, and far faster than ``DelayDense`` in Lava's CPU model."""
    return delay is not None and bool(np.any(delay != delay[:, :1]))


def per_output_delays(delay, kind: str):
    """One delay per output neuron (file order) of a layer of ``kind`` whose delays are
    ``delay`` (dense ``(out, in)``, conv per output), or None (none, or per input/synapse)."""
    if delay is None or (kind == "dense" and per_synapse_delays(delay)):
        return None
    return delay[:, 0] if kind == "dense" else delay


def output_delays(ly):
    """Per-output-neuron delays of ``ly``'s synapse (file order, ``ly.shape``), or None (also
    for a layer without a synapse)."""
    return None if ly.synapse is None else per_output_delays(ly.synapse.delay, ly.kind)
