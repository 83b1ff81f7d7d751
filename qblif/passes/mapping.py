"""Map a quantized IR onto a chip's neurocores: partition, place, utilization (pure, no Lava).

Each layer with neurons is split into core-sized *pieces*; every piece must satisfy every
per-core limit of the :class:`qblif.core.chip.Chip` (neuron state memory for its neuron
family, synaptic memory in bits, input axons, output routing entries):

- a 3-D layer ``(C, H, W)`` into slices of ``w`` output columns with all rows and channels,
  ``w`` a power of two (as Intel's Lava compiler slices PilotNet: ``Conv(4, 32, 24)`` etc. in
  lava-dl's pilotnet benchmark notebooks); a layer whose single column does not fit is cut
  along channels as well;
- a 1-D layer into runs of consecutive neurons (the largest run that fits).

Synaptic memory of a piece (bits; lanes: the thermometer lanes of a binary-encoded input):

- dense: ``min(dense, sparse)``: dense ``rows x inputs x lanes x (weight_bits + overhead)``,
  sparse ``nonzeros x lanes x (weight_bits + overhead + ceil(log2(inputs x lanes)))``;
- conv/pool: the shared kernel once per piece, ``channels x C_in/groups x kH x kW x lanes x
  (weight_bits + overhead)``.

Axons: dense, one input axon per presynaptic value with a non-zero weight into the piece;
conv/pool, one per input column the piece's receptive field covers, per lane (an assumption:
convolutional axons carry the row and channel). Output routing entries: one per neuron
with a dense consumer, one per column and consumer piece for a conv/pool consumer.

Pieces are placed in layer order on cores (snake order on the core mesh), a layer that would
straddle two chips but fits on one starts on a fresh chip (cuts the inter-chip traffic).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from qblif.core.chip import LOIHI2, Chip
from qblif.core.errors import ResourceLimitError
from qblif.core.numeric import conv2d, valid_taps
from qblif.ir import in_message, layers, producer
from qblif.passes.declare import declare

LIMITS = ("neurons", "synaptic memory", "axons in", "axons out")


@dataclass
class Piece:
    """One core's share of a layer. ``region``: ``(c0, c1, w0, w1)`` of a 3-D layer's
    ``(C, H, W)`` or ``(n0, n1)`` of a 1-D one. ``syn_bits``: synaptic memory (bits);
    ``synapses``: non-zero synapses into its neurons; ``chip``/``core`` set by placement."""
    layer: int
    region: tuple
    neurons: int
    synapses: int
    syn_bits: int
    axons_in: int
    axons_out: int = 0
    chip: int = -1
    core: int = -1

    def use(self, chip: Chip, family: str) -> dict:
        """Fraction of each per-core limit (keys :data:`LIMITS`) this piece uses."""
        return {"neurons": self.neurons / chip.max_neurons(family),
                "synaptic memory": self.syn_bits / chip.syn_mem_bits,
                "axons in": self.axons_in / chip.axons_in,
                "axons out": self.axons_out / chip.axons_out}


@dataclass
class Mapping:
    """The pieces of each mapped layer (``pieces[layer index]``), the chip, whether it fits
    (``reason`` says why not), cores and chips used, and inter-chip routed neurons."""
    chip: Chip
    pieces: dict = field(default_factory=dict)
    family: dict = field(default_factory=dict)
    fits: bool = True
    reason: str = ""
    cores: int = 0
    chips: int = 0
    inter_chip: int = 0

    def binding(self, index: int) -> str:
        """The limit closest to full over the pieces of layer ``index``."""
        use = [p.use(self.chip, self.family[index]) for p in self.pieces[index]]
        return max(LIMITS, key=lambda k: max(u[k] for u in use))

    def all_pieces(self) -> list:
        return [p for i in sorted(self.pieces) for p in self.pieces[i]]


def fan_in(ly, events=None, zeros: bool = False) -> np.ndarray:
    """Per output neuron (``ly.shape``): the sum over its non-zero synapses of ``events`` of
    the presynaptic value (int, ``ly.in_shape``; default 1 each: the fan-in). With events
    summed over a run, this is the SynOps each neuron received (spec section 4). ``zeros``:
    count zero weights too (every connection, as NeuroBench counts operations)."""
    ev = np.ones(ly.in_shape, np.int64) if events is None else np.asarray(events, np.int64)
    if ly.kind == "dense":
        mask = (np.asarray(ly.weight) != 0) | zeros
        return (mask.astype(np.int64) @ ev.reshape(-1)).reshape(ly.shape)
    mask, groups = _kernel_mask(ly, zeros)
    return conv2d(ev, mask, ly.stride, ly.padding, ly.dilation, groups, ly.shape[1:])


def _kernel_mask(ly, zeros: bool = False):
    """The conv/pool kernel's non-zero mask ``(C_out, C_in/groups, kH, kW)`` and groups."""
    m = ((np.asarray(ly.weight) != 0) | zeros).astype(np.int64)
    if ly.kind == "pool":
        c = ly.in_shape[0]
        return np.broadcast_to(m, (c, 1) + m.shape), c
    return m, ly.groups


def _family(ly) -> str:
    return ly.neuron.kind


def _lanes(g, ly) -> int:
    return in_message(g, ly.index).lanes if ly.synaptic else 1


def _store_bits(ly, chip: Chip) -> int:
    return ly.weight_bits + chip.weight_overhead_bits


def _dense_piece(g, ly, chip, n0, n1, fin, nonzero) -> Piece:
    """Rows ``n0..n1-1`` of a dense layer; nonzero: its weight matrix ``!= 0``."""
    lanes = _lanes(g, ly)
    mask = nonzero[n0:n1]
    nnz = int(fin[n0:n1].sum())
    n_in = mask.shape[1] * lanes
    wb = _store_bits(ly, chip)
    bits = min((n1 - n0) * n_in * wb, nnz * lanes * (wb + math.ceil(math.log2(max(n_in, 2)))))
    return Piece(ly.index, (n0, n1), n1 - n0, int(fin[n0:n1].sum()), bits,
                 int(mask.any(axis=0).sum()) * lanes)


def _in_columns(ly, w0, w1) -> int:
    """Input columns the receptive field of output columns ``w0..w1-1`` covers."""
    kw = (ly.weight.shape[-1])
    cols = [i[(o >= w0) & (o < w1)] for o, i in
            valid_taps(ly.in_shape[2], ly.shape[2], kw, ly.stride[1], ly.padding[1],
                       ly.dilation[1])]
    cols = np.concatenate(cols) if cols else np.zeros(0, int)
    return int(cols.max() - cols.min() + 1) if cols.size else 0


def _grid_piece(g, ly, chip, c0, c1, w0, w1, fin) -> Piece:
    h = ly.shape[1]
    neurons = (c1 - c0) * h * (w1 - w0)
    if not ly.synaptic:
        return Piece(ly.index, (c0, c1, w0, w1), neurons, 0, 0, 0)
    lanes = _lanes(g, ly)
    kh, kw = ly.weight.shape[-2:]
    cg = 1 if ly.kind == "pool" else ly.weight.shape[1]
    bits = (c1 - c0) * cg * kh * kw * lanes * _store_bits(ly, chip)
    return Piece(ly.index, (c0, c1, w0, w1), neurons, int(fin[c0:c1, :, w0:w1].sum()), bits,
                 _in_columns(ly, w0, w1) * lanes)


def _fits(p: Piece, chip: Chip, family: str, cap=None) -> bool:
    """Within every per-core limit (and at most ``cap`` neurons, if given)."""
    within = all(v <= 1 for v in p.use(chip, family).values())
    return within and (cap is None or p.neurons <= cap)


def _runs(n: int, size: int):
    return [(a, min(a + size, n)) for a in range(0, n, size)]


def partition_layer(g, ly, chip: Chip = LOIHI2, cap=None) -> list:
    """Core-sized :class:`Piece` s of ``ly`` (see the module text), each of at most ``cap``
    neurons if given; raises :class:`ResourceLimitError` when a single neuron (or column)
    exceeds a core."""
    fam = _family(ly)
    fin = fan_in(ly) if ly.synaptic else np.zeros(ly.shape, np.int64)
    if len(ly.shape) == 3:
        c, _, w = ly.shape
        for width in (2 ** k for k in range(math.ceil(math.log2(w)), -1, -1)):
            ps = [_grid_piece(g, ly, chip, 0, c, a, b, fin) for a, b in _runs(w, width)]
            if all(_fits(p, chip, fam, cap) for p in ps):
                return ps
        for chans in range(c, 0, -1):
            ps = [_grid_piece(g, ly, chip, c0, c1, a, a + 1, fin)
                  for a in range(w) for c0, c1 in _runs(c, chans)]
            if all(_fits(p, chip, fam, cap) for p in ps):
                return ps
    else:
        n = ly.size
        nonzero = np.asarray(ly.weight) != 0 if ly.kind == "dense" else None
        make = ((lambda a, b: _dense_piece(g, ly, chip, a, b, fin, nonzero))
                if ly.kind == "dense" else (lambda a, b: Piece(ly.index, (a, b), b - a, 0, 0, 0)))
        lo, hi, best = 1, n, None
        while lo <= hi:                      # the largest run length whose pieces all fit
            mid = (lo + hi) // 2
            ps = [make(a, b) for a, b in _runs(n, mid)]
            if all(_fits(p, chip, fam, cap) for p in ps):
                best, lo = ps, mid + 1
            else:
                hi = mid - 1
        if best is not None:
            return best
    # ps: the smallest pieces (one neuron; one channel of one column), the last ones tried
    use, lim = max((u[k], k) for u in (p.use(chip, fam) for p in ps) for k in u)
    raise ResourceLimitError(f"layer {ly.index} ({ly.kind}, {'x'.join(map(str, ly.shape))}) "
                             f"does not fit one {chip.name} core: its smallest piece needs "
                             f"{math.ceil(use * 100)}% of the core's {lim}")


def _consumers(g, i):
    return [ly for ly in layers(g) if ly.synaptic and producer(g, ly.index) is not None
            and producer(g, ly.index).index == i]


def _route(m: Mapping, g) -> None:
    """Output routing entries of every piece (see the module text)."""
    for i, ps in m.pieces.items():
        for p in ps:
            p.axons_out = 0
            for cons in _consumers(g, i):
                if cons.kind == "dense" or len(p.region) == 2:
                    p.axons_out += p.neurons
                else:
                    w0, w1 = p.region[2:]
                    p.axons_out += (w1 - w0) * len(m.pieces.get(cons.index, [None]))


def _smaller_pieces(g, m: Mapping, i: int):
    """Layer ``i`` cut into pieces of at most half its largest piece's neurons, or None."""
    cap = max(p.neurons for p in m.pieces[i]) // 2
    if cap < 1:
        return None
    try:
        return partition_layer(g, g.nodes[i]["layer"], m.chip, cap)
    except ResourceLimitError:
        return None


def _route_within(m: Mapping, g) -> bool:
    """Route; re-cut a layer whose pieces need more output routing entries than a core has
    into pieces of half as many neurons, until all fit (False, with the reason, if a
    one-neuron piece still does not)."""
    _route(m, g)
    over = [p for p in m.all_pieces() if p.axons_out > m.chip.axons_out]
    while over:
        i = over[0].layer
        pieces = _smaller_pieces(g, m, i)
        if pieces is None:
            m.fits, m.reason = False, (f"layer {i}: its smallest piece needs "
                                       f"{over[0].axons_out} output routing entries > "
                                       f"{m.chip.axons_out} per core")
            return False
        m.pieces[i] = pieces
        _route(m, g)
        over = [p for p in m.all_pieces() if p.axons_out > m.chip.axons_out]
    return True


def place(m: Mapping) -> None:
    """Cores and chips for every piece, layer by layer (snake order on the core mesh)."""
    per = m.chip.cores_per_chip
    chip_i, core_i = 0, 0
    for i in sorted(m.pieces):
        k = len(m.pieces[i])
        if core_i and core_i + k > per and k <= per:   # start the layer on a fresh chip
            chip_i, core_i = chip_i + 1, 0
        for p in m.pieces[i]:
            if core_i == per:
                chip_i, core_i = chip_i + 1, 0
            p.chip, p.core = chip_i, core_i
            core_i += 1
    m.cores = sum(len(ps) for ps in m.pieces.values())
    m.chips = chip_i + 1 if m.cores else 0


def core_xy(chip: Chip, core: int) -> tuple:
    """(row, column) of ``core`` on its chip's mesh, snake order."""
    r, c = divmod(core, chip.core_mesh[1])
    return r, (c if r % 2 == 0 else chip.core_mesh[1] - 1 - c)


def _inter_chip(m: Mapping, g) -> int:
    """Neurons whose output is routed to at least one piece on another chip."""
    n = 0
    for i, ps in m.pieces.items():
        dest = {q.chip for cons in _consumers(g, i) for q in m.pieces.get(cons.index, [])}
        n += sum(p.neurons for p in ps if dest - {p.chip})
    return n


def map_network(g, chip: Chip = LOIHI2, on_chip_input: bool = True) -> Mapping:
    """Partition and place every layer with neurons of ``g`` on ``chip``. ``on_chip_input``:
    an input layer with a neuron (bias-driven CUBA, SDNN delta encoder) takes cores too
    (False: it runs on the host, as stock NetX's ``skip_layers=1``). Never raises for a
    network that does not fit: ``fits`` is False and ``reason`` says why."""
    m = Mapping(chip=chip)
    for ly in layers(g):
        if ly.neuron is None or (ly.kind == "input" and not on_chip_input):
            continue
        m.family[ly.index] = _family(ly)
        bits = in_message(g, ly.index).wire_bits if ly.synaptic else 0
        if bits > chip.max_message_bits:
            m.fits, m.reason = False, (f"layer {ly.index}: {bits}-bit messages > "
                                       f"{chip.max_message_bits} bits of a graded spike")
            return m
        try:
            m.pieces[ly.index] = partition_layer(g, ly, chip)
        except ResourceLimitError as e:
            m.fits, m.reason = False, str(e)
            return m
    if not _route_within(m, g):
        return m
    place(m)
    m.inter_chip = _inter_chip(m, g)
    if m.fits and m.chips > chip.chips:
        m.fits, m.reason = False, (f"needs {m.cores} cores on {m.chips} chips; a {chip.name} "
                                   f"board has {chip.chips} chips of {chip.cores_per_chip} cores")
    return m


@declare(reads=("graph.input_message", "layer.dilation", "layer.groups", "layer.in_shape",
               "layer.kind", "layer.neuron", "layer.padding", "layer.resources", "layer.shape",
               "layer.stride", "layer.synapse", "layer.weight"),
         writes=("layer.resources", "graph.cores", "graph.chips", "graph.mapping"),
         requires=("graph.input_message",))
def map_to_chip(g):
    """``graph.mapping`` (:class:`Mapping` on the default chip, :data:`LOIHI2`), each layer's
    ``resources['cores']`` and ``graph`` ``cores``/``chips``."""
    m = map_network(g)
    for ly in layers(g):
        if ly.synaptic:
            ly.resources["cores"] = len(m.pieces.get(ly.index, []))
    g.graph.update(mapping=m, cores=m.cores, chips=m.chips)
    return g


def require_fit(m: Mapping) -> None:
    """Raise :class:`ResourceLimitError` (exit 2) with the reason when ``m`` does not fit."""
    if not m.fits:
        raise ResourceLimitError(f"the network does not fit {m.chip.name}: {m.reason}")
