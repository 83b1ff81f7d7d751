"""Compiler benchmark: compile time and steady-state Lava time per step of compiled graphs.

For every shipped model (netx_models/*.net with its card NAME.json), in one run of this script:

* ``qblif graded`` / ``qblif binary``: ``qblif.compile(model, encoding)`` (spec section 4);
* ``stock NetX CUBA``: the CUBA network of the same topology (the card's dataset and arch built
  with lava-dl's ``slayer.block.cuba`` blocks by ``qblif.training.make_model``, carrying
  the shipped model's trained weights so that activity is realistic), exported with
  ``qblif.training.export`` (lava-dl's own block export plus ``/qblif`` metadata) and
  loaded in stock ``lava.lib.dl.netx.hdf5.Network`` (per-sample reset, graded input of
  ``inputBits`` message bits), fed by a ``lava.proc.io.source.RingBuffer`` of the same integer
  frames, its output recorded by one ``lava.proc.io.sink.RingBuffer``;
* ``compiled CUBA graded``: our compiler on that CUBA file.

A shipped CUBA model (card ``neuron: cuba``) is its own counterpart: rows ``compiled CUBA
graded/binary`` and ``stock NetX CUBA`` of the file itself.

Time per step (the same method for every graph): a fresh runtime runs a warm-up of ``--warmup``
steps (compilation, process start-up, first steps), then a timed run of L steps on the same
runtime; L is fixed per model (calibrated once so that the stock NetX run takes about
``--target-s`` seconds) and the graphs are measured alternately, ``--repeats`` times; the
median is reported. Compile time: median of ``--compile-repeats`` calls of
``qblif.compile`` (reading, every pass, no Lava process built); for stock NetX, the
construction of ``hdf5.Network``. Processes: leaf Lava processes of the running graph
(``Executable.process_list``), sources and sinks included.

Writes bench/results/qblif.md (atomic) and prints it.

    python bench/bench_compiler.py [--repeats 5] [--target-s 2] [--models PATH ...]
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import platform
import statistics
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import qblif  # noqa: E402
from qblif.core.fileio import atomic_write_text  # noqa: E402
from qblif.lava.emit import emit  # noqa: E402
from qblif.lava.session import lava_session  # noqa: E402

TARGET_RATIO = 1.15     # graded QB-LIF graph / stock NetX CUBA graph, ms per step
TARGET_COMPILE_S = 2.0


def _cfg():
    from lava.magma.core.run_configs import Loihi2SimCfg
    return Loihi2SimCfg(select_tag="fixed_pt")


def _timed(proc, warmup: int, steps: int) -> tuple:
    """Warm-up run, then a timed run of ``steps`` on the same runtime: (s per step, processes)."""
    from lava.magma.core.run_conditions import RunSteps
    with lava_session(proc):
        proc.run(condition=RunSteps(num_steps=warmup), run_cfg=_cfg())
        t0 = time.perf_counter()
        proc.run(condition=RunSteps(num_steps=steps), run_cfg=_cfg())
        dt = time.perf_counter() - t0
        n_proc = len(proc._runtime._executable.process_list)
    return dt / steps, n_proc


def _median_time(fn, repeats: int) -> float:
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


class Compiled:
    """One of our compiled graphs, rebuilt (fresh processes) for every measurement."""

    def __init__(self, path, encoding):
        self.path, self.encoding = path, encoding
        self.net = qblif.compile(path, encoding=encoding)

    def compile_s(self, repeats):
        return _median_time(lambda: qblif.compile(self.path, encoding=self.encoding), repeats)

    def measure(self, frames, steps, warmup, timed):
        lava = np.ascontiguousarray(frames.transpose((0,) + tuple(range(frames.ndim - 1, 0, -1))))
        with tempfile.TemporaryDirectory() as workdir:   # records the output layer, as stock NetX
            em = emit(self.net.ir, lava, steps, workdir, record=[self.net.output_index])
            return _timed(em.source, warmup, timed)


class StockNetx:
    """Stock lava-dl NetX ``hdf5.Network`` of a file, RingBuffer in, RingBuffer out."""

    def __init__(self, path, input_bits, steps, input_shape):
        self.path, self.input_bits, self.steps = path, input_bits, steps
        # NetX wants (x, y, f) for a conv input; a dense first layer infers it
        self.input_shape = tuple(input_shape)[::-1] if len(input_shape) == 3 else None

    def _build(self):
        from lava.lib.dl.netx import hdf5
        return hdf5.Network(net_config=self.path, input_message_bits=self.input_bits,
                            reset_interval=self.steps, input_shape=self.input_shape)

    def compile_s(self, repeats):
        return _median_time(self._build, repeats)

    def measure(self, frames, steps, warmup, timed):
        from lava.proc.io.sink import RingBuffer as Sink
        from lava.proc.io.source import RingBuffer as Source
        net = self._build()
        lava = frames.transpose((0,) + tuple(range(frames.ndim - 1, 0, -1)))   # (S, W, H, C)
        data = np.repeat(lava[..., None], steps, axis=-1)                       # (S, ..., T)
        data = np.moveaxis(data, 0, -2).reshape(lava.shape[1:] + (-1,))         # (..., S*T)
        src = Source(data=data.astype(np.int32))
        src.s_out.reshape(net.inp.shape).connect(net.inp)
        sink = Sink(shape=net.out.shape, buffer=warmup + timed)
        net.out.connect(sink.a_in)
        return _timed(src, warmup, timed)


def cuba_counterpart(path, card, out):
    """Export the CUBA network of the same topology as ``path`` with its trained weights."""
    import torch

    from qblif.training.slayer import load_network
    from qblif.training.train import TrainConfig, export
    from qblif.training.train import make_model, seed_everything
    c = card.get("config", {})
    cfg = TrainConfig(dataset=card["dataset"], neuron="cuba", arch=card["arch"],
                      timesteps=int(card["timesteps"]), input_bits=int(c.get("input_bits", 4)),
                      threshold=float(c.get("threshold", 1.0)),
                      current_decay=float(c.get("current_decay", 1.0)),
                      voltage_decay=float(c.get("voltage_decay", 0.0)), progress=False)
    seed_everything(0, 1)
    model = make_model(cfg)
    src = load_network(path)
    with torch.no_grad():
        for a, b in zip(model.blocks, src.blocks):
            wa = getattr(getattr(a, "synapse", None), "weight", None)
            wb = getattr(getattr(b, "synapse", None), "weight", None)
            if wa is not None and wb is not None and wa.shape == wb.shape:
                wa.copy_(wb)
    export(model, cfg, out)
    return out


def load_frames(card, net, n):
    from qblif.core.data import load_dataset
    from qblif.core.encoding import quantize_intensity
    images, _ = load_dataset(card["dataset"], "test", limit=min(n, 1000))
    frames = quantize_intensity(images, int(net.ir.graph["input_bits"]))
    frames = frames.reshape((len(frames),) + net.input_shape)
    return frames[np.arange(n) % len(frames)]


def bench_model(path, args, log):
    card = json.load(open(os.path.splitext(path)[0] + ".json"))
    name = os.path.splitext(os.path.basename(path))[0]
    graded = Compiled(path, "graded")
    steps = int(graded.net.ir.graph["timesteps"])
    bits = int(graded.net.ir.graph["input_bits"])
    if card.get("neuron") == "cuba":          # a shipped CUBA model: stock NetX runs it as is
        graphs = {"compiled CUBA graded": graded,
                  "compiled CUBA binary": Compiled(path, "binary"),
                  "stock NetX CUBA": StockNetx(path, bits, steps, graded.net.input_shape)}
    else:
        tmpdir = tempfile.mkdtemp(prefix="bench_compiler_")
        cuba_path = cuba_counterpart(path, card, os.path.join(tmpdir, f"{name}_cuba.net"))
        graphs = {"QB-LIF graded": graded, "QB-LIF binary": Compiled(path, "binary"),
                  "stock NetX CUBA": StockNetx(cuba_path, bits, steps, graded.net.input_shape),
                  "compiled CUBA graded": Compiled(cuba_path, "graded")}
    warm = args.warmup
    notes = []
    try:                                       # stock NetX may not load the file at all
        graphs["stock NetX CUBA"]._build()
        base_key = "stock NetX CUBA"
    except Exception as exc:  # noqa: BLE001 - reported in the table
        graphs.pop("stock NetX CUBA")
        base_key = "compiled CUBA graded"
        notes.append(f"{name}: stock NetX cannot load the CUBA file "
                     f"({type(exc).__name__}: {exc}); ratios are vs compiled CUBA graded")
        log(notes[-1])
    # calibrate L on the baseline graph
    probe = 2 * warm
    frames = load_frames(card, graded.net, (warm + probe) // steps + 2)
    per, _ = graphs[base_key].measure(frames, steps, warm, probe)
    timed = int(np.clip(round(args.target_s / per / 10) * 10, args.min_steps, args.max_steps))
    frames = load_frames(card, graded.net, (warm + timed) // steps + 2)
    log(f"{name}: T={steps}, warm-up {warm} steps, timed {timed} steps "
        f"(probe {per * 1e3:.2f} ms/step)")
    times = {k: [] for k in graphs}
    procs = {}
    for r in range(args.repeats):
        for k, g in graphs.items():
            t, procs[k] = g.measure(frames, steps, warm, timed)
            times[k].append(t)
            log(f"  [{r + 1}/{args.repeats}] {k}: {t * 1e3:.3f} ms/step ({procs[k]} processes)")
    comp = {k: g.compile_s(args.compile_repeats) for k, g in graphs.items()}
    base = statistics.median(times[base_key])
    rows = []
    for k in graphs:
        t = statistics.median(times[k])
        rows.append(dict(model=name, graph=k, processes=procs[k], ms=t * 1e3, ratio=t / base,
                         compile_s=comp[k], timed=timed, base=base_key, notes=notes))
    return rows


def table(rows, args) -> str:
    machine = (f"{platform.platform()}, {platform.machine()}, {os.cpu_count()} logical cores, "
               f"Python {platform.python_version()}")
    lines = [
        "# Compiler benchmark", "",
        f"Machine: {machine}. Lava fixed_pt CPU simulation (Loihi2SimCfg).", "",
        f"ms/step: steady state, warm-up run of {args.warmup} steps then a timed run of L steps "
        f"on the same runtime, median of {args.repeats} alternating fresh runtimes (L per model "
        "below). Ratio: vs stock NetX CUBA of the same topology. Compile s: median of "
        f"{args.compile_repeats} `qblif.compile` calls (all passes; for stock NetX, building "
        "`hdf5.Network`). Processes: leaf Lava processes, source and sinks included.", "",
        "| model | graph | processes | ms/step | ratio vs stock NetX CUBA | compile s |",
        "|---|---|---:|---:|---:|---:|"]
    for r in rows:
        star = "" if r["base"] == "stock NetX CUBA" else " *"
        lines.append(f"| {r['model']} (L={r['timed']}) | {r['graph']} | {r['processes']} | "
                     f"{r['ms']:.3f} | {r['ratio']:.2f}{star} | {r['compile_s']:.3f} |")
    lines += ["", f"Targets: QB-LIF graded <= {TARGET_RATIO}x stock NetX CUBA per step; "
              f"compile < {TARGET_COMPILE_S} s.", ""]
    for note in dict.fromkeys(n for r in rows for n in r["notes"]):
        lines.append(f"- \\* {note}")
    for r in rows:
        ok_c = "met" if r["compile_s"] < TARGET_COMPILE_S else "MISSED"
        if r["graph"] == "QB-LIF graded":
            ok_r = "met" if r["ratio"] <= TARGET_RATIO else "MISSED"
            vs = "stock NetX CUBA" if r["base"] == "stock NetX CUBA" else "compiled CUBA *"
            lines.append(f"- {r['model']}: QB-LIF graded {r['ratio']:.2f}x {vs} ({ok_r}), "
                         f"compile {r['compile_s']:.3f} s ({ok_c})")
        elif r["graph"] == "compiled CUBA graded" and r["base"] == r["graph"] and not any(
                q["model"] == r["model"] and q["graph"] == "QB-LIF graded" for q in rows):
            lines.append(f"- {r['model']} (a CUBA model, no QB-LIF graph): compile "
                         f"{r['compile_s']:.3f} s ({ok_c})")
    return "\n".join(lines) + "\n"


def main(argv=None) -> str:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+",
                    default=sorted(glob.glob(os.path.join(ROOT, "netx_models", "*.net"))))
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--compile-repeats", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--target-s", type=float, default=2.0,
                    help="timed run length, seconds of the baseline graph (default 2)")
    ap.add_argument("--min-steps", type=int, default=40)
    ap.add_argument("--max-steps", type=int, default=2000)
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "results", "qblif.md"))
    args = ap.parse_args(argv)
    import qblif.training.lavadl  # noqa: F401  (silences lava-dl's import-time prints)

    def log(msg):
        print(msg, flush=True)
    rows = []
    for path in args.models:
        rows += bench_model(path, args, log)
    text = table(rows, args)
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    atomic_write_text(args.out, text)
    print(text)
    return text


if __name__ == "__main__":
    main()
