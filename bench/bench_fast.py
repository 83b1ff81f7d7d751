"""Fast exact Lava execution: steps/s with the fast models vs Lava's stock models, in one run.

Rows (each graph built fresh for each model set, the two measured alternately):

* ``fmnist_qblif_conv`` and ``digits_qblif_mlp``: our compiled graph (``qblif.compile``,
  graded, lanes=1), ``models="stock"`` (Lava's own ``Dense``/``Conv`` models and the previous
  QBLIF model: today's emission) vs ``models="fast"`` (``qblif.lava.fastsyn`` and the lean
  QBLIF model), fed the same random frames, output layer recorded;
* ``pilotnet_sdnn``: lava-dl's ``gts/pilotnet_sdnn/network.net`` through stock NetX
  (``netx.hdf5.Network``) fed its ``input.npy`` by a ``RingBuffer``, Lava's stock models vs
  the fast ``Dense``/``Conv`` models via ``exception_proc_model_map``; the first
  ``len(net.layers)`` outputs are also checked against lava-dl's ``output.npy``.

Steady state: a fresh runtime runs ``--warmup`` steps (compilation, process start-up), then a
timed run of ``--steps`` steps on the same runtime; the median of ``--repeats`` alternating
measurements. "identical": the recorded outputs of the stock and fast runs are equal.

Second table: each process model of the ``fmnist_qblif_conv`` graph stepped alone in this
process (``qblif.lava.fastsyn.standin``, no Lava runtime, so no per-process overhead and
less exposure to other jobs): median ms per ``run_spk`` of stock and fast model on the same
random inputs (counts 0..K into synapses, synaptic input +-200 into neurons).

    python bench/bench_fast.py [--steps 200] [--warmup 10] [--repeats 1]

Writes bench/results/fast.md (atomic) and prints it.
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import qblif  # noqa: E402
from qblif.lava.emit import emit  # noqa: E402
from qblif.lava.procs.recorder.process import read_recording  # noqa: E402
from qblif.api import run_config  # noqa: E402
from qblif.core.fileio import atomic_write_text  # noqa: E402
from qblif.lava.session import lava_session  # noqa: E402

TARGETS = {"fmnist_qblif_conv": 8.0, "pilotnet_sdnn": 10.0}


def _children_cpu() -> dict:
    """CPU seconds (user + system) of each live child process of this one (Lava's)."""
    me, tick, out = str(os.getpid()), os.sysconf("SC_CLK_TCK"), {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            f = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if f[1] == me:
            out[int(stat.parent.name)] = (int(f[11]) + int(f[12])) / tick
    return out


LAST_CPU = {}    # CPU-ms per step of the last timed run: {"all": ..., "largest": ...}


def _timed(proc, cfg, warmup: int, steps: int, after_warmup=None) -> tuple:
    """Seconds per step of ``steps`` steps after ``warmup`` steps on one runtime, and
    whatever ``after_warmup()`` returned. Sets :data:`LAST_CPU` (from /proc)."""
    from lava.magma.core.run_conditions import RunSteps
    with lava_session(proc):
        proc.run(condition=RunSteps(num_steps=warmup), run_cfg=cfg)
        early = after_warmup() if after_warmup else None
        cpu0 = _children_cpu()
        t0 = time.perf_counter()
        proc.run(condition=RunSteps(num_steps=steps), run_cfg=cfg)
        dt = (time.perf_counter() - t0) / steps
        used = [c - cpu0.get(pid, 0.0) for pid, c in _children_cpu().items()]
    LAST_CPU.update(all=sum(used) / steps * 1e3, largest=max(used) / steps * 1e3)
    return dt, early


def compiled_graph(name: str, models: str, warmup: int, steps: int):
    """(s per step, output recording, processes) of our compiled graph of ``name``."""
    net = qblif.compile(os.path.join(ROOT, "netx_models", name + ".net"))
    total = warmup + steps
    t_ = 4
    n_s = -(-total // t_)
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 2 ** int(net.ir.graph["input_bits"]), (n_s,) + net.input_shape)
    lava_frames = np.ascontiguousarray(
        frames.transpose((0,) + tuple(range(frames.ndim - 1, 0, -1))).astype(np.int32))
    out = net.output_index
    with tempfile.TemporaryDirectory(prefix="bench-fast-") as workdir:
        em = emit(net.ir, lava_frames, t_, workdir, {out})
        _, path, size = em.sinks[out]
        dt, _ = _timed(em.source, run_config(models), warmup, steps)
        rec = read_recording(path, size, em.total_steps)[:total].copy()
    return dt, rec, len(em.processes)


def pilotnet(models: str, warmup: int, steps: int):
    """(s per step, first len(layers) outputs, leaf processes) of stock NetX's pilotnet_sdnn."""
    from lava.lib.dl import netx
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.proc.io.sink import RingBuffer as Sink
    from lava.proc.io.source import RingBuffer as Source

    from qblif.lava.fastsyn import fast_models
    import sysconfig
    site = sysconfig.get_paths()["purelib"]           # lava-dl ships its tests there
    root = os.path.join(site, "tests", "lava", "lib", "dl", "netx", "gts", "pilotnet_sdnn")
    net = netx.hdf5.Network(net_config=os.path.join(root, "network.net"))
    n_layers = len(net.layers)
    src = Source(data=np.load(os.path.join(root, "input.npy")))
    sink = Sink(shape=net.out_layer.shape, buffer=n_layers)
    src.s_out.connect(net.in_layer.neuron.a_in)
    net.out_layer.out.connect(sink.a_in)
    cfg = Loihi2SimCfg(select_tag="fixed_pt",
                       exception_proc_model_map=fast_models() if models == "fast" else {})
    gt = np.load(os.path.join(root, "output.npy"))
    dt, early = _timed(net, cfg, n_layers, steps, lambda: sink.data.get().copy())
    return dt, early, gt


def model_steps(name: str = "fmnist_qblif_conv", steps: int = 30) -> list:
    """Rows (process, shape, stock ms, fast ms) of every synapse and neuron model of
    ``name``'s compiled graph, each stepped alone in this process."""
    from lava.proc.conv.models import PyConvModelFixed
    from lava.proc.conv.process import Conv
    from lava.proc.dense.models import PyDenseModelBitAcc
    from lava.proc.dense.process import Dense

    from qblif.lava.fastsyn import FastConvModel, FastDenseModel
    from qblif.lava.fastsyn.baseline import PyQBLIFModelFixedLegacy
    from qblif.lava.fastsyn.standin import build_model, drive
    from qblif.lava.procs.qblif import QBLIF
    from qblif.lava.procs.qblif.models import PyQBLIFModelFixed
    pairs = {Conv: (PyConvModelFixed, FastConvModel, ("s_in", "a_out")),
             Dense: (PyDenseModelBitAcc, FastDenseModel, ("s_in", "a_out")),
             QBLIF: (PyQBLIFModelFixedLegacy, PyQBLIFModelFixed, ("a_in", "s_out"))}
    net = qblif.compile(os.path.join(ROOT, "netx_models", name + ".net"))
    frames = np.zeros((1,) + net.input_shape[::-1], np.int32)
    rng = np.random.default_rng(1)
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-fast-") as workdir:
        em = emit(net.ir, frames, 4, workdir, set())
        for proc in em.processes:
            if type(proc) not in pairs:
                continue
            stock, fast, ports = pairs[type(proc)]
            shape = getattr(proc, ports[0]).shape
            xs = (rng.integers(0, 5, (steps,) + shape) * (rng.random((steps,) + shape) < 0.3)
                  if ports[0] == "s_in" else rng.integers(-200, 200, (steps,) + shape))
            ms = []
            for cls in (stock, fast):
                pm = build_model(cls, proc, np.int32, ports)
                drive(pm, xs[:2], ports)                       # first-step set-up
                times = []
                for x in xs[2:]:
                    t0 = time.perf_counter()
                    drive(pm, [x], ports)
                    times.append(time.perf_counter() - t0)
                ms.append(statistics.median(times) * 1e3)
            rows.append((proc.name, "x".join(map(str, shape)), *ms))
    return rows


def main(argv=None) -> str:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--graphs", nargs="+",
                    default=["fmnist_qblif_conv", "digits_qblif_mlp", "pilotnet_sdnn"])
    ap.add_argument("--model-steps", type=int, default=30,
                    help="steps per model in the in-process table (0: skip it)")
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "results", "fast.md"))
    args = ap.parse_args(argv)
    rows, notes = [], []
    load0 = os.getloadavg()[0]
    for g in args.graphs:
        times, cpus = {"stock": [], "fast": []}, {"stock": [], "fast": []}
        outs, extra = {}, ""
        for _ in range(args.repeats):
            for models in ("stock", "fast"):
                if g == "pilotnet_sdnn":
                    dt, out, gt = pilotnet(models, args.warmup, args.steps)
                    ok = np.array_equal(out, gt)
                    if f" {models}:" not in extra:
                        extra += f" {models}: {'=' if ok else '!='} lava-dl ground truth;"
                    elif not ok:
                        extra += f" {models} (a repeat): != lava-dl ground truth;"
                    graph = "stock NetX (lava-dl)"
                else:
                    dt, out, n_proc = compiled_graph(g, models, args.warmup, args.steps)
                    graph = f"compiled, graded, lanes=1, {n_proc} processes"
                times[models].append(dt)
                cpus[models].append((LAST_CPU["all"], LAST_CPU["largest"]))
                outs.setdefault(models, out)
                print(f"{g} {models}: {dt * 1e3:.2f} ms/step", flush=True)
        stock, fast = (statistics.median(times[m]) for m in ("stock", "fast"))
        same = np.array_equal(outs["stock"], outs["fast"])
        speedup = stock / fast
        cpu = {m: tuple(statistics.median(c[i] for c in cpus[m]) for i in (0, 1)) for m in cpus}
        rows.append(f"| {g} | {graph} | {1 / stock:.1f} | {1 / fast:.1f} | {speedup:.1f}x | "
                    f"{'yes' if same else 'NO'} | {cpu['stock'][0]:.1f} / {cpu['stock'][1]:.1f} | "
                    f"{cpu['fast'][0]:.1f} / {cpu['fast'][1]:.1f} |")
        if g in TARGETS:
            verdict = "met" if speedup >= TARGETS[g] else "missed"
            notes.append(f"- {g}: {speedup:.1f}x (target >= {TARGETS[g]:.0f}x, {verdict})")
        if extra:
            notes.append(f"- {g}: first {outs['fast'].shape[-1]} outputs:{extra.rstrip(';')}")
    model_table = []
    if args.model_steps:
        model_table = [
            "## fmnist_qblif_conv, each process model stepped alone (in-process)", "",
            f"Median ms per step of {args.model_steps - 2} steps after 2 set-up steps; stock: "
            "Lava's Conv/Dense models and the previous QBLIF model.", "",
            "| process | input shape | stock ms/step | fast ms/step | speedup |",
            "|---|---|---:|---:|---:|"]
        for proc, shape, st, fa in model_steps(steps=args.model_steps):
            model_table.append(f"| {proc} | {shape} | {st:.3f} | {fa:.3f} | {st / fa:.1f}x |")
        model_table.append("")
    machine = (f"{platform.platform()}, {platform.machine()}, {os.cpu_count()} logical cores, "
               f"Python {platform.python_version()}, numpy {np.__version__}")
    text = "\n".join([
        "# Fast exact Lava execution", "",
        f"Machine: {machine}. Lava fixed_pt CPU simulation. 1-minute load average "
        f"{load0:.1f} at the start, {os.getloadavg()[0]:.1f} at the end (other jobs share "
        "the machine: stock and fast runs alternate, so both see it).",
        "",
        f"Steady state: warm-up {args.warmup} steps, then {args.steps} timed steps on the same "
        f"runtime, median of {args.repeats} alternating fresh runtimes per model set. stock: "
        "Lava's own Dense/Conv models (and the previous QBLIF model); fast: "
        "qblif.lava.fastsyn + the lean QBLIF model.", "",
        "CPU-ms/step: CPU time of all Lava child processes (the Lava processes, the runtime "
        "service, helpers) per timed step / of the busiest one, from /proc.", "",
        "| graph | how | stock steps/s | fast steps/s | speedup | identical | stock CPU-ms/step "
        "all / busiest | fast CPU-ms/step all / busiest |",
        "|---|---|---:|---:|---:|---|---:|---:|", *rows, "", *notes, ""] + model_table)
    atomic_write_text(args.out, text)
    print(text)
    return text


if __name__ == "__main__":
    main()
