"""PilotNet validation of the mapper and cost model against Intel's Loihi 2 measurements
(lava-dl's pilotnet_snn/benchmark.ipynb and pilotnet_sdnn/benchmark.ipynb; docs/mapping.md).

Activity: the exact engine on the ground-truth inputs lava-dl ships beside the files
(pilotnet_lif: image.npy as the input neuron's bias, the benchmark's reset_interval=16,
reset_offset=3; pilotnet_sdnn: input.npy, 9 steps). Prints one line per network and the
fitted static power. Usage: python bench/bench_mapping.py
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np

import qblif
from qblif.passes.cost import estimate_cost
from qblif.passes.mapping import map_network

GTS = Path(sys.prefix) / "lib/python3.10/site-packages/tests/lava/lib/dl/netx/gts"
# Intel, Loihi 2 (lava-dl benchmark notebooks, as quoted in issue 20): cores, fps, mJ/inference
INTEL = {"SNN": (74, 408.91, 1.66), "SDNN": (61, 16.87, 16.34)}


def lif_events():
    with qblif.compile(GTS / "pilotnet_lif/network.net") as net:
        image = np.load(GTS / "pilotnet_lif/image.npy").astype(int).transpose(2, 1, 0)[None]
        net.run(image, 16, engine="exact", reset="netx", reset_interval=16, reset_offset=3)
        return net.ir, net.last_run["events"]


def sdnn_events():
    with qblif.compile(GTS / "pilotnet_sdnn/network.net") as net:
        inp = np.load(GTS / "pilotnet_sdnn/input.npy")[..., 0].transpose(2, 1, 0)
        net.run(inp[None], 9, engine="exact")
        return net.ir, net.last_run["events"]


def row(name, m, cost, intel):
    c, fps, mj = intel
    e = cost.energy_j["total"] * 1e3
    return (f"{name:<34}{m.cores:>6}{c:>6}{m.cores / c - 1:>+8.0%}{cost.fps:>10.1f}{fps:>9.2f}"
            f"{cost.fps / fps:>7.2f}x{e:>9.3f}{mj:>7.2f}{e / mj:>7.2f}x")


def main():
    print(f"load average {os.getloadavg()}")
    print(f"{'network (encoding)':<34}{'cores':>6}{'Intel':>6}{'diff':>8}{'fps':>10}{'Intel':>9}"
          f"{'ratio':>8}{'mJ':>9}{'Intel':>7}{'ratio':>8}")
    g, ev = lif_events()
    m = map_network(g)
    for enc in ("binary", "graded"):
        print(row(f"SNN: pilotnet_lif ({enc})", m, estimate_cost(m, g, ev, 16, enc),
                  INTEL["SNN"]) + "  (t_synop, static fitted here)")
    m = map_network(g, on_chip_input=False)
    print(f"{'SDNN layers: pilotnet_lif, no input':<34}{m.cores:>6}{INTEL['SDNN'][0]:>6}"
          f"{m.cores / INTEL['SDNN'][0] - 1:>+8.0%}  (the benchmarked SDNN's layer shapes)")
    g, ev = sdnn_events()
    m = map_network(g, on_chip_input=False)
    c = estimate_cost(m, g, ev, 1, "graded")
    print(row("SDNN: shipped pilotnet_sdnn", m, c, INTEL["SDNN"])
          + "  (compute-bound; half-size net)")
    frame = 1.0 / INTEL["SDNN"][1]      # Intel's step: bound by the host sending the frame
    e_io = (c.energy_j["synops"] + c.energy_j["updates"]) + m.chip.static_w * m.chips * frame
    print(f"{'  + Intel frame time (host input)':<34}{'':>20}{1 / frame:>10.2f}{INTEL['SDNN'][1]:>9.2f}"
          f"{'1.00x':>8}{e_io * 1e3:>9.3f}{INTEL['SDNN'][2]:>7.2f}"
          f"{e_io * 1e3 / INTEL['SDNN'][2]:>7.2f}x  (energy predicted)")


def fit_snn():
    """The two constants fitted on PilotNet SNN: t_synop (the step time Intel measured:
    1 / (408.91 fps x 16 steps)) and static power per chip (Intel's 1.66 mJ minus the model's
    dynamic energy, over Intel's inference time)."""
    import dataclasses
    from qblif.core.chip import LOIHI2
    g, ev = lif_events()
    m = map_network(g)
    target = 1.0 / (INTEL["SNN"][1] * 16)
    lo, hi = 1e-12, 1e-8
    for _ in range(60):
        mid = (lo + hi) / 2
        m.chip = dataclasses.replace(LOIHI2, t_synop_s=mid)
        lo, hi = (mid, hi) if estimate_cost(m, g, ev, 16).step_s < target else (lo, mid)
    c = estimate_cost(m, g, ev, 16)
    dyn = c.energy_j["synops"] + c.energy_j["updates"]
    static = (INTEL["SNN"][2] * 1e-3 - dyn) / (16 * target)
    print(f"fitted on SNN: t_synop_s={lo:.4g}, static_w={static:.4g} (dynamic {dyn * 1e3:.3f} mJ)")


if __name__ == "__main__":
    fit_snn() if "--fit" in sys.argv else main()
