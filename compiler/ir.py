"""Graph IR: a ``networkx.DiGraph`` of plain typed layer records.

Nodes are keyed by the NetX layer index ``i`` (``/layer/<i>``) and carry
``layer``: a :class:`Layer`. Edges ``(i, j)`` carry the message from layer i to j:
``bits`` (payload bits of one event; 0 = 1-bit binary spike), ``lanes`` (number
of parallel 1-bit lanes in the ``binary`` encoding, else 1) and ``encoding``.
Graph attributes (``g.graph``): ``path``, ``input_shape``, ``input_bits``,
``timesteps``, ``dataset``, ``encoding``, and what later passes add.

Shape convention: the file's (lava-dl / torch) order, ``(C, H, W)`` for 3-D
layers and ``(N,)`` for 1-D ones; the emitter converts to Lava's ``(W, H, C)``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import networkx as nx
import numpy as np

LAYER_KINDS = ("input", "dense", "conv", "pool", "flatten", "average")
NEURON_KINDS = ("QBLIF", "CUBA", "LOIHI", "SDNN")
SYNAPTIC_KINDS = ("dense", "conv", "pool")


@dataclass
class Neuron:
    """Neuron parameters in Loihi fixed-point units (spec section 1).

    ``vth`` and ``bias_mant`` are ints or arrays of the layer's shape (per-neuron,
    after broadcasting per-channel values); ``kind`` is ``QBLIF`` or ``CUBA``
    (``LOIHI`` is read as ``CUBA``) or ``SDNN``. CUBA is a QB-LIF with ``max_burst=1`` and
    ``reset_mode="zero"``. SDNN uses ``vth`` (scalar ``vThMant``), ``message_bits``
    (default 16, as stock NetX), ``bias_mant`` and the SDNN fields below.
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

    @property
    def graded(self) -> bool:
        """Emits graded (signed, multi-bit) messages regardless of the burst encoding."""
        return self.kind == "SDNN"


@dataclass
class Layer:
    """One NetX layer.

    weight: integer weight mantissas as read (dense ``(out, in)``, conv
    ``(C_out, C_in/groups, kH, kW)``, pool ``(kH, kW)``), int64.
    shape: output shape (file order); in_shape: filled by shape inference.
    kernel/stride/padding/dilation: ``(H, W)`` pairs; groups int.
    Fields filled by passes: ``in_shape``, ``weight_exp``, ``weight_bits``,
    ``sign_mode``, ``lava_weight`` (what is handed to Lava), ``depth``
    (number of synaptic layers up to and including this one), ``proc``
    (Lava process kind), ``resources`` (dict).
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
    in_shape: Optional[tuple] = None
    weight_exp: int = 0
    weight_bits: int = 8
    sign_mode: Optional[int] = None
    lava_weight: Optional[np.ndarray] = None
    depth: int = 0
    proc: Optional[str] = None
    resources: dict = field(default_factory=dict)
    syn: dict = field(default_factory=dict)
    reset_offset: int = 0

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))

    @property
    def max_burst(self) -> int:
        """Largest count per step this layer emits (K; 1 for CUBA)."""
        return int(self.neuron.max_burst) if self.neuron is not None else 0


def new_graph(**attrs) -> nx.DiGraph:
    g = nx.DiGraph()
    g.graph.update(attrs)
    return g


def layers(g: nx.DiGraph):
    """Layer records in index order."""
    return [g.nodes[i]["layer"] for i in sorted(g.nodes)]


def neuron_layers(g: nx.DiGraph):
    """Layers that own a neuron population (have a Lava neuron process)."""
    return [ly for ly in layers(g) if ly.neuron is not None and ly.kind != "input"]


def sdnn_layers(g: nx.DiGraph):
    """Layers (input layers included) with a sigma-delta neuron."""
    return [ly for ly in layers(g) if ly.neuron is not None and ly.neuron.kind == "SDNN"]


def producer(g: nx.DiGraph, i: int):
    """The layer whose output feeds layer ``i`` (skipping flatten); None for the input."""
    preds = list(g.predecessors(i))
    if not preds:
        return None
    p = g.nodes[preds[0]]["layer"]
    return producer(g, p.index) if p.kind == "flatten" else p
