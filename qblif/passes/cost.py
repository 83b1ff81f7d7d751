"""Time and energy of a mapped network from the measured activity of a run (docs/mapping.md).

Per step, each core spends ``SynOps x t_synop + neurons x t_update`` (every neuron is updated
every step); the step ends at the slowest core plus the barrier ``t_barrier``. Per inference:
``steps x step time``; energy ``SynOps x e_synop + neuron updates x e_update + static power
x chips x time``. The constants are the :class:`qblif.core.chip.Chip`'s.

Encodings of a burst of n spikes (spec section 4): ``binary`` sends n unit events (n x
fan-out SynOps, what a run measures), ``graded`` one event (1 x fan-out SynOps).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from qblif.ir import ENCODINGS
from qblif.passes.mapping import Mapping, fan_in


@dataclass(frozen=True)
class Cost:
    """Predicted cost of one inference. synops_per_step: ``{layer: mean SynOps per step}``;
    step_s: the slowest core's step plus the barrier (s); inference_s: ``steps`` steps (s);
    energy_j: ``{"synops", "updates", "static", "total"}`` per inference (J)."""
    encoding: str
    steps: int
    synops_per_step: dict
    step_s: float
    inference_s: float
    energy_j: dict

    @property
    def fps(self) -> float:
        return 1.0 / self.inference_s


def piece_synops(m: Mapping, g, events: dict, encoding: str) -> dict:
    """Mean SynOps per step of every piece: ``{layer: [float per piece]}``.

    events: ``{layer: int array (samples, steps, *in_shape)}`` of presynaptic unit events
    (:meth:`qblif.api.CompiledNetwork.input_events`)."""
    if encoding not in ENCODINGS:
        raise ValueError(f"unknown encoding {encoding!r} (expected one of {ENCODINGS})")
    out = {}
    for i, ev in events.items():
        if i not in m.pieces:
            continue
        ly = g.nodes[i]["layer"]
        ev = np.asarray(ev, np.int64)
        per = ev.shape[0] * ev.shape[1]
        unit = ev if encoding == "binary" else (ev != 0).astype(np.int64)
        rx = fan_in(ly, unit.sum(axis=(0, 1)))
        out[i] = [float(_region(rx, p.region).sum()) / per for p in m.pieces[i]]
    return out


def _region(a: np.ndarray, region: tuple) -> np.ndarray:
    if len(region) == 2:
        return a.reshape(-1)[region[0]:region[1]]
    c0, c1, w0, w1 = region
    return a[c0:c1, :, w0:w1]


def estimate_cost(m: Mapping, g, events: dict, steps: int, encoding: str = "binary") -> Cost:
    """:class:`Cost` of one inference of ``steps`` steps on ``m`` (see the module text)."""
    chip = m.chip
    ops = piece_synops(m, g, events, encoding)
    core_s = [(ops[i][k] if i in ops else 0.0) * chip.t_synop_s + p.neurons * chip.t_update_s
              for i in sorted(m.pieces) for k, p in enumerate(m.pieces[i])]
    step_s = max(core_s, default=0.0) + chip.t_barrier_s
    syn = {i: float(sum(v)) for i, v in ops.items()}
    t = steps * step_s
    neurons = sum(p.neurons for p in m.all_pieces())
    e = {"synops": steps * sum(syn.values()) * chip.e_synop_j,
         "updates": steps * neurons * chip.e_update_j,
         "static": chip.static_w * max(m.chips, 1) * t}
    e["total"] = sum(e.values())
    return Cost(encoding, steps, syn, step_s, t, e)
