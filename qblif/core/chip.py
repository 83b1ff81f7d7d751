"""What a neuromorphic chip offers a mapped network: per-core memories and routing tables,
the mesh, and the timing/energy constants of the cost model (docs/mapping.md).

:class:`Chip` is one frozen record; :data:`LOIHI2` is the default. Every figure names its
source in :data:`LOIHI2_SOURCES` (the same keys as the fields); a figure with no public
source is marked ``ASSUMPTION``, one fitted to Intel's PilotNet measurements ``FITTED``.

Sources:
  [brief]  Intel, "Taking Neuromorphic Computing to the Next Level with Loihi 2",
           technology brief, 2021, Table 1.
  [davies] M. Davies et al., "Loihi: A Neuromorphic Manycore Processor with On-Chip
           Learning", IEEE Micro 38(1), 2018, Table 2 (Loihi 1 circuit figures; Intel
           published no per-operation figures for Loihi 2).
  [nb-snn] lava-dl, tutorials/lava/lib/dl/netx/pilotnet_snn/benchmark.ipynb (Loihi 2 run:
           the compiler's per-core table and its ``cost_db.registers['SynMem']=12000``).
  [nb-sdnn] lava-dl, tutorials/lava/lib/dl/netx/pilotnet_sdnn/benchmark.ipynb.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields
from types import MappingProxyType

ASSUMPTION = "ASSUMPTION"
FITTED = "FITTED"


@dataclass(frozen=True)
class Chip:
    """One chip type (``name`` for the command line, ``title`` for reports). Units: bits,
    counts, seconds (``*_s``), joules (``*_j``), watts.

    state_slots_per_core: 24-bit neuron state words per core; a neuron of family F takes
    ``state_words[F]`` of them (so at most ``state_slots_per_core // state_words[F]``
    neurons of F per core). syn_mem_bits: synaptic memory per core. weight_overhead_bits:
    bits each stored weight carries besides its ``weight_bits`` mantissa (the sign).
    axons_in / axons_out: input axon and output routing entries per core.
    core_mesh / chip_mesh: (rows, cols) of cores on a chip and of chips on a board.
    """
    name: str
    title: str
    cores_per_chip: int
    core_mesh: tuple
    chip_mesh: tuple
    state_slots_per_core: int
    state_words: MappingProxyType
    syn_mem_bits: int
    weight_overhead_bits: int
    axons_in: int
    axons_out: int
    max_message_bits: int
    t_synop_s: float
    t_update_s: float
    t_barrier_s: float
    e_synop_j: float
    e_update_j: float
    static_w: float
    sources: MappingProxyType = field(default_factory=lambda: MappingProxyType({}))

    def __deepcopy__(self, memo) -> "Chip":     # immutable: a copy of the IR shares it
        return self

    def __reduce__(self):                        # pickle the read-only tables as dicts
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        return (chip_from_dicts, ({k: dict(v) if isinstance(v, MappingProxyType) else v
                                   for k, v in values.items()},))

    @property
    def chips(self) -> int:
        """Chips on the board (``chip_mesh`` rows x cols)."""
        return self.chip_mesh[0] * self.chip_mesh[1]

    def max_neurons(self, family: str) -> int:
        """Neurons of ``family`` (``CUBA``, ``QBLIF``, ``SDNN``, ...) one core holds; a family
        the chip does not list takes the most words any family takes."""
        return self.state_slots_per_core // self.state_words.get(family, max(self.state_words.values()))


def chip_from_dicts(values: dict) -> Chip:
    """A :class:`Chip` from plain values (its tables as dicts): what unpickling calls."""
    return Chip(**{k: MappingProxyType(v) if isinstance(v, dict) else v
                   for k, v in values.items()})


LOIHI2_SOURCES = MappingProxyType({
    "cores_per_chip": "[brief] 128 neuromorphic cores per chip",
    "core_mesh": f"{ASSUMPTION}: the 128 cores as an 8 x 16 mesh (the brief gives no layout)",
    "chip_mesh": f"{ASSUMPTION}: one Kapoho Point board, 8 chips (2 x 4); Intel's board brief",
    "state_slots_per_core": "[brief] up to 1 M neurons per chip = 8192 per core (one 24-bit "
                            "state word each)",
    "state_words": f"{ASSUMPTION}: CUBA/QB-LIF u, v; SDNN sigma, last output; ALIF/RF 3 "
                   "words (24-bit each)",
    "syn_mem_bits": "[nb-snn] SynMem limit 12000 words per core; the 64-bit word is an "
                    f"{ASSUMPTION}",
    "weight_overhead_bits": f"{ASSUMPTION}: one sign bit per stored weight",
    "axons_in": f"[davies] 4096 input axons per core (Loihi 1; {ASSUMPTION} for Loihi 2)",
    "axons_out": f"[davies] 4096 output axon routing entries per core (Loihi 1; "
                 f"{ASSUMPTION} for Loihi 2)",
    "max_message_bits": "[brief] graded spikes carry integer payloads of up to 32 bits",
    "t_synop_s": f"{FITTED} on PilotNet SNN ([nb-snn] 408.91 fps = 153 us per step): 1.0 ns "
                 "(Loihi 1: 3.5 ns [davies])",
    "t_update_s": "[davies] 8.4 ns per active neuron update (Loihi 1)",
    "t_barrier_s": "[davies] 113-465 ns barrier synchronisation (Loihi 1, 1-32 chips); "
                   "465 ns taken",
    "e_synop_j": "[davies] 23.6 pJ per synaptic operation (Loihi 1)",
    "e_update_j": "[davies] 81 pJ per active neuron update (Loihi 1)",
    "static_w": f"{FITTED} on PilotNet SNN ([nb-snn] 1.66 mJ per inference at 408.91 fps): "
                "0.21 W per chip, Intel's energy less the model's dynamic energy over its time",
})

LOIHI2 = Chip(
    name="loihi2", title="Loihi 2", cores_per_chip=128, core_mesh=(8, 16), chip_mesh=(2, 4),
    state_slots_per_core=8192,
    state_words=MappingProxyType({"CUBA": 2, "QBLIF": 2, "SDNN": 2, "ALIF": 3, "RF": 3}),
    syn_mem_bits=12000 * 64, weight_overhead_bits=1, axons_in=4096, axons_out=4096,
    max_message_bits=32, t_synop_s=1.0e-9, t_update_s=8.4e-9, t_barrier_s=465e-9,
    e_synop_j=23.6e-12, e_update_j=81e-12, static_w=0.21, sources=LOIHI2_SOURCES)

CHIPS = MappingProxyType({"loihi2": LOIHI2})
