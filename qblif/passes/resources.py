"""Resource estimation per layer (static part; SynOps are added after a run). The cores
and chips a network needs come from the mapping pass (:mod:`qblif.passes.mapping`)."""
from __future__ import annotations

import numpy as np

from qblif.core import numeric
from qblif.ir import in_message, layers, output_delays
from qblif.passes.declare import declare

@declare(reads=("layer.dilation", "layer.groups", "layer.in_shape", "layer.kind",
               "layer.padding", "layer.resources", "layer.shape", "layer.stride",
               "layer.synapse", "layer.weight"),
         writes=("layer.resources", "layer.fan_out_vec"),
         requires=())
def estimate_resources(g):
    """``layer.resources`` of each synaptic layer: neurons, synapses, fan-in/out. (Message
    bits and lanes are the input edge's :class:`qblif.ir.Message`; weight bits/exponent the
    :class:`qblif.ir.Synapse`.)"""
    for ly in layers(g):
        r = ly.resources
        if not ly.synaptic:
            r.update(neurons=0, synapses=0)
            continue
        fo = numeric.fan_out(ly)
        ly.fan_out_vec = fo
        syn = int(fo.sum())
        r.update(neurons=ly.size, synapses=syn,
                 fan_in=syn / ly.size, fan_out=syn / max(1, fo.size))
    return g


def synops_per_step(ly, counts_in: np.ndarray) -> float:
    """Mean SynOps per step of ``ly``'s input: unit events x fan-out (spec section 4).

    counts_in: presynaptic counts ``(samples, steps, *in_shape)``.
    """
    c = np.asarray(counts_in, np.int64)
    per = (c * ly.fan_out_vec.reshape((1, 1) + ly.fan_out_vec.shape)).reshape(c.shape[0], c.shape[1], -1)
    return float(per.sum(axis=2).mean())


# ------------------------------------------------------------------ host (Lava CPU) estimate
# Lava 0.10 runs every process model in its own forked OS process (plus one runtime service
# and the shared-memory manager), forked from the parent. Measured (docs/hardening.md): the
# digits MLP's 9 worker processes have a proportional set size (PSS) of 12.8 MB each (their
# RSS of 77 MB each is mostly pages shared copy-on-write with the parent); a 200-layer net
# of 605 processes used about 13 GB, 21.5 MB each (issue 10). Per process, the larger:
PROCESS_MB = 21.5
MAX_PROCESSES = 256            # documented limit (docs/hardening.md); --force overrides
MAX_MEMORY_FRACTION = 0.5      # of MemAvailable (/proc/meminfo) at the time of the check
RUNTIME_PROCESSES = 2          # Lava's runtime service + the shared-memory manager


def _lava_processes(g, record=None, record_uv: bool = False, states: tuple = ()) -> int:
    """Lava processes :func:`qblif.lava.emit.emit` builds for ``g`` (same rules, counted; a
    dense_rec layer's feedback gate, built in the per-sample mode only, counted always)."""

    def recorded(ly):   # a Recorder, plus one StateRecorder (u, v; SDNN states); QB-LIF's
        rec = record is None or ly.index in record     # lean model records u, v itself
        sdnn = ly.neuron.kind == "SDNN"
        return rec + (record_uv and not sdnn and ly.neuron.kind != "RF"
                      and ly.proc != "QBLIF") + bool(states and sdnn and rec)

    n = 1                                            # FrameSource / BiasNeuron
    lanes_ready = True
    lys = layers(g)
    for ly in lys:
        if ly is lys[0] and ly.proc in ("BiasNeuron", "Delta"):
            n += recorded(ly) + (ly.proc == "Delta")
            lanes_ready = False
            continue
        if not ly.synaptic:
            continue
        n += 2 + recorded(ly)                        # synapse + neuron
        n += in_message(g, ly.index).lanes > 1 and not lanes_ready   # Thermometer
        if ly.synapse.imag is not None:
            n += 1                                   # imaginary Dense
        else:
            n += output_delays(ly) is not None      # DelayLine
            if ly.synapse.weight_rec is not None:    # recurrent Dense (+ its Thermometer),
                # + the feedback gate of the sample mode (counted in every mode: an upper bound)
                n += 2 + (g.edges[ly.index, ly.index]["message"].lanes > 1)
        lanes_ready = False
    return n


def _mem_available_mb():
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def host_estimate(g, samples: int = 1, steps: int = 1, record=None,
                  record_uv: bool = False, states: tuple = ()) -> dict:
    """What a Lava CPU run of ``g`` needs on this host, before anything starts.

    Returns ``processes`` (OS processes: Lava processes + :data:`RUNTIME_PROCESSES`),
    ``memory_mb`` (processes x :data:`PROCESS_MB` + recordings: int32 per recorded
    neuron per step, x3 with ``record_uv``, + one per SDNN state of ``states``, the names
    ``run(record=)`` takes), ``available_mb`` (MemAvailable, None if
    unknown) and the limits ``max_processes`` / ``max_memory_mb``.
    """
    procs = _lava_processes(g, record, record_uv, states) + RUNTIME_PROCESSES
    total_steps = int(samples) * int(steps) + int(g.graph.get("depth", 0))
    rec_neurons = sum(ly.size for ly in layers(g) if ly.neuron is not None
                      and (record is None or ly.index in record))
    rec_mb = rec_neurons * total_steps * 4 * (1 + 2 * bool(record_uv) + len(states)) / 2 ** 20
    avail = _mem_available_mb()
    return dict(processes=procs, memory_mb=procs * PROCESS_MB + rec_mb,
                recording_mb=rec_mb, available_mb=avail, max_processes=MAX_PROCESSES,
                max_memory_mb=None if avail is None else avail * MAX_MEMORY_FRACTION)


def describe_host_estimate(est: dict) -> str:
    """One line: ``'Lava CPU estimate: 7 OS processes, ~154 MB host memory (limits: ...)'``."""
    lim = f"{est['max_processes']} processes"
    if est.get("max_memory_mb") is not None:
        lim += f", {est['max_memory_mb']:,.0f} MB ({MAX_MEMORY_FRACTION:.0%} of available)"
    return (f"Lava CPU estimate: {est['processes']} OS processes, ~{est['memory_mb']:,.0f} MB "
            f"host memory (limits: {lim})")


def check_host_estimate(est: dict, force: bool = False) -> None:
    """Raise :class:`qblif.core.errors.ResourceLimitError` past a limit, unless ``force``."""
    from qblif.core.errors import ResourceLimitError
    over = []
    if est["processes"] > est["max_processes"]:
        over.append(f"{est['processes']} OS processes > {est['max_processes']}")
    if est.get("max_memory_mb") is not None and est["memory_mb"] > est["max_memory_mb"]:
        over.append(f"~{est['memory_mb']:,.0f} MB > {est['max_memory_mb']:,.0f} MB")
    if over and not force:
        raise ResourceLimitError(f"refusing to start Lava: {describe_host_estimate(est)}; "
                                 f"over the limit: {'; '.join(over)} (one OS process per Lava "
                                 f"process; pass --force / force=True to run anyway)")
