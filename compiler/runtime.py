"""Runtime API: ``compile(path) -> CompiledNetwork``; ``CompiledNetwork.run(...)``."""
from __future__ import annotations

import time

import numpy as np
from tqdm.auto import tqdm

from compiler.errors import CompileError
from compiler.ir import layers, producer
from compiler.passes import run_passes
from compiler.procs.recorder.process import read_recording
from compiler.reader import read
from qblif_lava.lava_session import stop_runtime

DEFAULT_INPUT_BITS = 8
ENGINES = ("lava", "exact")


def compile(path, encoding: str = "graded", input_bits=None) -> "CompiledNetwork":  # noqa: A001
    """Read ``path`` (NetX HDF5), run every pass of :data:`compiler.passes.PASSES`.

    encoding: ``"graded"`` or ``"binary"`` (spec section 4). input_bits: bits of the
    direct graded input; the file's ``/qblif/inputBits`` wins, else this, else 8.
    Raises :class:`CompileError` for any malformed or unsupported file.
    """
    if encoding not in ("graded", "binary"):
        raise CompileError(f"unknown encoding {encoding!r} (expected graded or binary)")
    g = read(path)
    if "input_bits" not in g.graph:
        g.graph["input_bits"] = DEFAULT_INPUT_BITS if input_bits is None else int(input_bits)
    g.graph["encoding"] = encoding
    return CompiledNetwork(run_passes(g))


def _chunks(total: int, parts: int) -> list:
    """Split ``total`` steps into at most ``parts`` near-equal positive chunks."""
    parts = max(1, min(int(parts), int(total)))
    base, extra = divmod(int(total), parts)
    return [base + (i < extra) for i in range(parts)]


class CompiledNetwork:
    """A compiled network: ``.ir`` (networkx DiGraph), ``.run()``, ``.report()``.

    Use as a context manager (``with compile(p) as net: ...``): any Lava runtime
    still alive is stopped on exit, also on error. ``run`` itself always stops
    the runtime it started.
    """

    def __init__(self, ir):
        self.ir = ir
        self.last_run = None     # dict of the last run's statistics (for the report)
        self._live = []

    # context manager -------------------------------------------------
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def close(self):
        while self._live:
            stop_runtime(self._live.pop())

    # properties --------------------------------------------------------
    @property
    def input_shape(self) -> tuple:
        return tuple(self.ir.graph["input_shape"])

    @property
    def output_index(self) -> int:
        return [ly.index for ly in layers(self.ir) if ly.neuron is not None][-1]

    def check_frames(self, frames) -> np.ndarray:
        frames = np.asarray(frames)
        if frames.shape[1:] != self.input_shape and frames.shape == self.input_shape:
            frames = frames[None]
        if frames.ndim < 1 or frames.shape[1:] != self.input_shape or frames.shape[0] < 1:
            raise ValueError(f"input frames have shape {frames.shape}, expected "
                             f"(samples, {', '.join(map(str, self.input_shape))})")
        hi = 2 ** int(self.ir.graph["input_bits"]) - 1
        if frames.dtype.kind not in "iub" or frames.min() < 0 or frames.max() > hi:
            raise ValueError(f"input frames must be integers in [0, {hi}] "
                             f"(inputBits={self.ir.graph['input_bits']})")
        return frames.astype(np.int32)

    # running -----------------------------------------------------------
    def run(self, samples, steps_per_sample: int, record_uv: bool = False,
            layers_to_record=None, progress: bool = False, engine: str = "lava") -> dict:
        """Stream ``samples`` through one Lava run.

        samples: ints ``(S, *input_shape)`` (file order, ``(C, H, W)`` or ``(N,)``) in
        ``0 .. 2**input_bits - 1``; each is presented unchanged for ``steps_per_sample``
        steps T. Returns ``{layer index: counts}`` for every neuron layer, counts int32
        ``(S, T, *layer shape)`` (file order): the burst count n of each neuron at each
        of its T steps of each sample (for SDNN layers: the graded message sent, in
        units of 2**-6, signed; the input encoder of an SDNN net is layer 0); with
        ``record_uv`` also ``("u", i)`` and ``("v", i)`` of the same shape (states after
        each step; not for SDNN layers, which have none). SDNN layers are never reset:
        their samples are not independent (``ir.graph["stateful"]``). Lava runs
        ``S*T + depth`` steps in total. ``layers_to_record``: layer indices to return
        (default every neuron layer; ``[net.output_index]`` saves a process per layer).
        ``progress``: show a tqdm bar (the run is then split into up to 50 chunks).
        ``engine``: ``"lava"`` (default) or ``"exact"``: the same counts from the batched
        exact engine (:mod:`compiler.engine.exact`, torch) instead of a Lava run;
        ``last_run["lava_steps"]`` is then the Lava run's length it stands for.
        """
        if engine not in ENGINES:
            raise ValueError(f"unknown engine {engine!r} (expected one of {', '.join(ENGINES)})")
        if engine == "exact":
            return self._run_exact(samples, steps_per_sample, record_uv, layers_to_record,
                                   progress)
        import tempfile
        from lava.magma.core.run_conditions import RunSteps
        from lava.magma.core.run_configs import Loihi2SimCfg
        from compiler.emit import emit

        steps = int(steps_per_sample)
        if steps < 1:
            raise ValueError(f"steps_per_sample={steps} must be >= 1")
        frames = self.check_frames(samples)
        n_s = frames.shape[0]
        lava_frames = frames.transpose((0,) + tuple(range(frames.ndim - 1, 0, -1)))
        record = None if layers_to_record is None else {int(i) for i in layers_to_record}
        with tempfile.TemporaryDirectory(prefix="qblif-run-") as workdir:
            em = emit(self.ir, np.ascontiguousarray(lava_frames), steps, workdir, record, record_uv)
            self._live.append(em.source)
            t0 = time.perf_counter()
            try:
                cfg = Loihi2SimCfg(select_tag="fixed_pt")
                with tqdm(total=em.total_steps, unit="step", desc="Lava", disable=not progress,
                          leave=False) as bar:
                    for chunk in _chunks(em.total_steps, 50 if progress else 1):
                        em.source.run(condition=RunSteps(num_steps=chunk), run_cfg=cfg)
                        bar.update(chunk)
                wall = time.perf_counter() - t0
                data = {i: read_recording(path, size, em.total_steps).T
                        for i, (_, path, size) in em.sinks.items()}        # (size, total)
                uv = {k: m.get_data() for k, m in em.monitors.items()}
            finally:
                self._live.remove(em.source)
                stop_runtime(em.source)
        out = {}
        for ly in layers(self.ir):
            if ly.index not in em.sinks:
                continue
            cols = (np.arange(n_s)[:, None] * steps + ly.reset_offset - 1
                    + np.arange(steps)[None, :])
            block = data[ly.index][:, cols]             # (size, S, T)
            out[ly.index] = np.moveaxis(block, 0, -1).reshape((n_s, steps) + tuple(ly.shape))
            for var in ("u", "v") if record_uv and ("u", ly.index) in uv else ():
                neu = em.neurons[ly.index]
                series = np.asarray(uv[(var, ly.index)][neu.name][var])   # (total, *lava shape)
                series = series.reshape((series.shape[0],) + tuple(ly.shape)[::-1])
                series = series.transpose((0,) + tuple(range(series.ndim - 1, 0, -1)))
                out[(var, ly.index)] = series[cols].astype(np.int32)
        self.last_run = dict(samples=n_s, steps=steps, lava_steps=em.total_steps,
                             wall_s=wall, steps_per_s=em.total_steps / wall,
                             processes=len(em.processes))
        self._measure(frames, out)
        return out

    def _run_exact(self, samples, steps_per_sample, record_uv, layers_to_record, progress):
        from compiler.engine import ExactEngine
        steps = int(steps_per_sample)
        if steps < 1:
            raise ValueError(f"steps_per_sample={steps} must be >= 1")
        frames = self.check_frames(samples)
        eng = ExactEngine(self.ir)
        out = eng.run(frames, steps, record_uv=record_uv, layers_to_record=layers_to_record,
                      progress=progress)
        total = frames.shape[0] * steps + int(self.ir.graph["depth"])
        wall = eng.last_run["wall_s"]
        self.last_run = dict(samples=frames.shape[0], steps=steps, lava_steps=total, wall_s=wall,
                             steps_per_s=total / wall if wall > 0 else float("inf"),
                             processes=0, engine="exact", device=eng.last_run["device"],
                             threads=eng.threads)
        self._measure(frames, out)
        return out

    def _measure(self, frames, out):
        """Activity statistics of the last run: spikes and SynOps per step per layer."""
        from compiler.passes.resources import synops_per_step
        n_s, steps = self.last_run["samples"], self.last_run["steps"]
        stats = {}

        def events(ly, values):   # SDNN: one event per non-zero graded message
            sd = ly is not None and ly.neuron is not None and ly.neuron.kind == "SDNN"
            return (values != 0).astype(np.int64) if sd else values

        for ly in layers(self.ir):
            if ly.index not in out:
                continue
            if ly.kind == "input":   # SDNN delta encoder: no synapse of its own
                stats[ly.index] = dict(spikes_per_step=float(
                    events(ly, out[ly.index]).reshape(n_s, steps, -1).sum(2).mean()))
                continue
            src = producer(self.ir, ly.index)
            if src is None or (src.kind == "input" and src.neuron is None):
                cin = np.broadcast_to(frames[:, None], (n_s, steps) + frames.shape[1:])
            elif src.index in out:
                cin = events(src, out[src.index])
            else:                    # producer not recorded: no SynOps for this one
                continue
            cin = cin.reshape((n_s, steps) + tuple(ly.in_shape))
            stats[ly.index] = dict(
                synops_per_step=synops_per_step(ly, cin),
                in_events_per_step=float(cin.reshape(n_s, steps, -1).sum(2).mean()),
                spikes_per_step=float(events(ly, out[ly.index]).reshape(n_s, steps, -1)
                                      .sum(2).mean()))
        self.last_run["layers"] = stats

    def report(self) -> str:
        from compiler.report import text_report
        return text_report(self)
