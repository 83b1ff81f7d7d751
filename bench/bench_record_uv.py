"""Recording u and v at the speed of the run: ``run(record_uv=True)`` against the same run
without recording and against stock NetX recording the same u and v, in one run.

Rows, alternated ``--repeats`` times (wall time of the whole call: emission, the Lava run, the
read-back):

Stock NetX runs once (its Monitors' read-back takes minutes), in the first round.

* ``pilotnet_lif`` (lava-dl's ``gts/pilotnet_lif/network.net``, the image as the input
  neuron's bias, stock's ``reset_interval=17``), ``--steps`` steps (default 24, the ground
  truth's): ours without ``record_uv``; ours with it (``qblif.lava.procs.recorder.StateRecorder``:
  one read of u and v per layer per step into a memmap); stock NetX
  (``netx.hdf5.Network``, Lava ``Monitor`` per u and v, ``tests/stock_netx.py``) with u and v;
  ours with u and v must equal stock's on every layer and step.
* ``fmnist_qblif_conv`` (the shipped conv model; stock NetX has no QB-LIF and no pool, so no
  stock row): ``--samples`` test images of T = 4 steps, without and with ``record_uv`` (the
  lean QB-LIF model writes u and v into the memmaps itself).

The machine may be shared: the load average before and after is recorded; timings are noisy.

    python bench/bench_record_uv.py [--steps 24] [--samples 16] [--repeats 2]

Writes bench/results/record_uv.md (atomic) and prints it.
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "tests"))

import qblif  # noqa: E402
from qblif.core.fileio import atomic_write_text  # noqa: E402
import stock_netx  # noqa: E402

PILOTNET = os.path.join(stock_netx.GTS_DIR, "pilotnet_lif", "network.net")
CONV = os.path.join(ROOT, "netx_models", "fmnist_qblif_conv.net")
TARGET_RATIO = 1.5     # with record_uv / without


def _load() -> str:
    return " / ".join(f"{x:.1f}" for x in os.getloadavg())


def _timed(f):
    t0 = time.perf_counter()
    r = f()
    return r, time.perf_counter() - t0


def pilotnet_runs(steps: int) -> dict:
    """name -> zero-argument callable of each pilotnet_lif row."""
    image = np.load(os.path.join(stock_netx.GTS_DIR, "pilotnet_lif", "image.npy")).astype(int)
    frame = image.transpose(2, 1, 0)[None]        # Lava (W, H, C) -> file order (1, C, H, W)
    modes = dict(reset="netx", reset_interval=17, timeline=True)

    def ours(uv):
        with qblif.compile(PILOTNET) as net:
            return net.run(frame, steps, record_uv=uv, **modes)

    return {"ours": lambda: ours(False), "ours, record_uv": lambda: ours(True),
            "stock NetX, Monitors on u and v": lambda: stock_netx.run_stock(
                PILOTNET, frame[0], steps, input_mode="bias", reset_interval=17,
                record_uv=True)}


def pilotnet_equal(ours: dict, stock, steps: int) -> str:
    """Whether our timeline u and v equal stock's on every stock layer and step."""
    bad = []
    for i in stock.u:
        for var, theirs in (("u", stock.u[i]), ("v", stock.v[i])):
            mine = ours[(var, i)][:steps]
            if not np.array_equal(mine, theirs):
                bad.append(f"{var}{i}")
    return "yes, every layer and step" if not bad else f"NO: {', '.join(bad)}"


def conv_runs(samples: int) -> dict:
    from qblif.core.data import load_dataset
    from qblif.core.encoding import quantize_intensity
    x, _ = load_dataset("fashion-mnist", "test", samples)

    def ours(uv):
        with qblif.compile(CONV) as net:
            frames = quantize_intensity(x, 4).reshape((samples,) + net.input_shape)
            return net.run(frames, 4, record_uv=uv)

    return {"ours": lambda: ours(False), "ours, record_uv": lambda: ours(True)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=24)
    ap.add_argument("--samples", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "results", "record_uv.md"))
    args = ap.parse_args(argv)
    load_before = _load()
    cases = {f"pilotnet_lif, {args.steps} steps": pilotnet_runs(args.steps),
             f"fmnist_qblif_conv, {args.samples} images x 4 steps": conv_runs(args.samples)}
    walls = {(c, r): [] for c, runs in cases.items() for r in runs}
    results = {}
    for rep in range(args.repeats):
        for case, runs in cases.items():
            for name, f in runs.items():
                if name.startswith("stock") and rep > 0:   # minutes under load: once
                    continue
                results[(case, name)], w = _timed(f)
                walls[(case, name)].append(w)
                print(f"{case} | {name} | {w:.2f} s", flush=True)
    pil = next(iter(cases))
    equal = pilotnet_equal(results[(pil, "ours, record_uv")],
                           results[(pil, "stock NetX, Monitors on u and v")], args.steps)
    lines = ["# Recording u and v", "",
             f"Machine: {platform.platform()}, {os.cpu_count()} logical cores, Python "
             f"{platform.python_version()}. Load average (1/5/15 min) before: {load_before}; "
             f"after: {_load()} (shared machine: timings are noisy). Wall time of each whole "
             f"call (compile/emission, the Lava run, the read-back), best of {args.repeats} "
             f"alternating runs (all runs listed).", "",
             "| network | run | best wall s | runs (s) | / ours without record_uv |",
             "|---|---|---:|---|---:|"]
    verdicts = []
    for case, runs in cases.items():
        base = min(walls[(case, "ours")])
        for name in runs:
            w = walls[(case, name)]
            lines.append(f"| {case} | {name} | {min(w):.2f} | "
                         f"{' / '.join(f'{v:.2f}' for v in w)} | {min(w) / base:.2f}x |")
        ratio = min(walls[(case, "ours, record_uv")]) / base
        verdicts.append(f"- {case}: record_uv costs {ratio:.2f}x the run without it (target <= "
                        f"{TARGET_RATIO}x: {'met' if ratio <= TARGET_RATIO else 'missed'})")
        stock = walls.get((case, "stock NetX, Monitors on u and v"))
        if stock:
            ours_uv = min(walls[(case, "ours, record_uv")])
            verdicts.append(f"- {case}: ours with record_uv {ours_uv:.2f} s vs stock NetX's "
                            f"monitors {min(stock):.2f} s "
                            f"({'as fast or faster' if ours_uv <= min(stock) else 'slower'})")
    verdicts.append(f"- pilotnet_lif: our u and v equal stock NetX's: {equal}")
    text = "\n".join(lines + [""] + verdicts) + "\n"
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    atomic_write_text(args.out, text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
