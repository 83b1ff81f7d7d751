"""Runtime API: ``compile(path) -> CompiledNetwork``; ``CompiledNetwork.run(...)``."""
from __future__ import annotations

import time

import numpy as np
from tqdm.auto import tqdm

from compiler.errors import CompileError
from compiler.ir import layers, per_output_delays, producer
from compiler.procs.recorder.process import read_recording
from compiler.procs.source.process import lane_shape
from compiler.build import DEFAULT_INPUT_BITS, compile_ir  # noqa: F401 (re-exported)
from qblif_lava.lava_session import LavaSession, stop_runtime

ENGINES = ("lava", "exact")


def compile(path, encoding: str = "graded", input_bits=None,  # noqa: A001
            nir_options=None) -> "CompiledNetwork":
    """Read ``path`` (NetX HDF5, or NIR for a ``.nir`` path), run every pass of
    :data:`compiler.passes.PASSES` (:func:`compile_ir`), and wrap the IR for Lava and the
    exact engine. Raises :class:`CompileError` for any malformed or unsupported file.
    """
    return CompiledNetwork(compile_ir(path, encoding, input_bits, nir_options))


MODELS = ("fast", "stock")
AUTO_LANES = 32   # CompiledNetwork.auto_lanes: the fastest L measured for fmnist_qblif_conv


def run_config(models: str = "fast") -> "Loihi2SimCfg":  # noqa: F821 (imported lazily)
    """Lava's ``fixed_pt`` run config for ``models``: ``"fast"`` (Lava's ``Dense``/``Conv``
    run by :mod:`qblif_lava.fastsyn`, QBLIF by its lean model) or ``"stock"`` (Lava's own
    ``Dense``/``Conv`` models and the previous QBLIF model: the in-run baseline). Both are
    bit-exact; see docs/fast_execution.md."""
    from lava.magma.core.run_configs import Loihi2SimCfg
    if models not in MODELS:
        raise ValueError(f"models={models!r} (expected one of {', '.join(MODELS)})")
    if models == "fast":
        from qblif_lava.fastsyn import fast_models
        return Loihi2SimCfg(select_tag="fixed_pt", exception_proc_model_map=fast_models())
    from qblif_lava.process import QBLIF
    from qblif_lava.fastsyn.baseline import PyQBLIFModelFixedLegacy
    return Loihi2SimCfg(select_tag="fixed_pt",
                        exception_proc_model_map={QBLIF: PyQBLIFModelFixedLegacy})


def _chunks(total: int, parts: int) -> list:
    """Split ``total`` steps into at most ``parts`` near-equal positive chunks."""
    parts = max(1, min(int(parts), int(total)))
    base, extra = divmod(int(total), parts)
    return [base + (i < extra) for i in range(parts)]


def _one_blas_thread():
    """A context in which BLAS runs on one thread; Lava forks its worker processes inside it
    (on the first ``run`` call), so each worker keeps one BLAS thread. Every leaf process is
    already an OS process and a Lava graph fills the cores: more BLAS threads per process only
    spin against the other processes (``fmnist_qblif_conv`` at 32 lanes: 20% less CPU per
    step, docs/fast_execution.md). The caller's own setting is restored on exit."""
    try:
        from threadpoolctl import threadpool_limits    # a dependency of scikit-learn
    except ImportError:                                # pragma: no cover
        import contextlib
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


def _to_sample_lanes(lava_frames: np.ndarray, lanes: int) -> np.ndarray:
    """Frames ``(S, *shape)`` (Lava order) -> ``(ceil(S/L), *shape[:-1], L*shape[-1])``:
    sample ``b*L + l`` in lane l of batch b (lane-outer on the last axis); a short last
    batch is padded with zero frames."""
    n_s, shape = lava_frames.shape[0], lava_frames.shape[1:]
    batches = -(-n_s // lanes)
    padded = np.zeros((batches * lanes,) + shape, lava_frames.dtype)
    padded[:n_s] = lava_frames
    laned = np.moveaxis(padded.reshape((batches, lanes) + shape), 1, -2)
    return laned.reshape((batches,) + shape[:-1] + (lanes * shape[-1],))


def _from_sample_lanes(rec: np.ndarray, lanes: int, n_s: int, steps: int, offset: int,
                       shape) -> np.ndarray:
    """A laned recording ``(L*size, total)`` (lane l at rows ``l*size ..``, file order) ->
    counts ``(S, T, *shape)``: sample ``b*L + l`` is lane l at steps ``b*T + offset ..``."""
    batches = -(-n_s // lanes)
    cols = (np.arange(batches)[:, None] * steps + offset - 1 + np.arange(steps)[None, :])
    block = rec.reshape(lanes, -1, rec.shape[1])[:, :, cols]       # (L, size, B, T)
    block = block.transpose(2, 0, 3, 1).reshape((batches * lanes, steps, -1))[:n_s]
    return np.ascontiguousarray(block).reshape((n_s, steps) + tuple(shape))


def _timeline_from_lanes(rec: np.ndarray, lanes: int, n_s: int, steps: int, offset: int,
                         shape, depth: int) -> np.ndarray:
    """A laned recording ``(L*size, total)`` -> the ``lanes=1`` run's whole timeline
    ``(1, S*T + depth, *shape)`` of a layer whose sample windows start at step ``offset``
    (valid where every layer is reset at each window start, :meth:`CompiledNetwork._refuse_lanes`):
    steps before the first window are lane 0's (every lane's, zero state and input), window
    step j of sample s is lane ``s % L``'s of batch ``s // L``, and the steps after the last
    window are the last sample's lane's after its batch (zero input, zero state)."""
    batches, size = -(-n_s // lanes), rec.shape[0] // lanes
    per_lane = rec.reshape(lanes, size, rec.shape[1])
    head = per_lane[0][:, :offset - 1].T                                   # (offset-1, size)
    windows = _from_sample_lanes(rec, lanes, n_s, steps, offset, shape).reshape(n_s * steps,
                                                                               size)
    tail = per_lane[(n_s - 1) % lanes][:, batches * steps + offset - 1:batches * steps + depth].T
    return np.concatenate([head, windows, tail]).reshape((1, -1) + tuple(shape))


def _unlane(rec: np.ndarray, ly, lanes: int, n_s: int, steps: int, depth: int,
            timeline: bool) -> np.ndarray:
    """Layer ``ly``'s laned series ``(L*size, total)`` (file order, lane-outer) -> the
    ``lanes=1`` run's sample windows, or with ``timeline`` its whole timeline."""
    if timeline:
        return _timeline_from_lanes(rec, lanes, n_s, steps, ly.reset_offset, ly.shape, depth)
    return _from_sample_lanes(rec, lanes, n_s, steps, ly.reset_offset, ly.shape)


class _Session(LavaSession):
    """A supervised session whose process (the source) is set once emitted."""

    def __init__(self):
        super().__init__(None)


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
        """``frames`` as int32 ``(S, *input_shape)``; one frame of ``input_shape`` is one sample.

        Frames of the right size in another shape (the dataset loader's ``(S, 1, 8, 8)`` for a
        ``(64,)`` model, ``(S, 28, 28)`` for ``(1, 28, 28)``) are reshaped when the model input
        is flat or the shapes differ only by axes of size 1; otherwise refused with a message
        saying how to reshape them. Values must be ints in ``0 .. 2**input_bits - 1``.
        """
        frames = np.asarray(frames)
        shape = self.input_shape
        want = f"(samples, {', '.join(map(str, shape))})"
        if frames.shape[1:] != shape and frames.shape == shape:
            frames = frames[None]
        if frames.ndim >= 2 and frames.shape[0] >= 1 and frames.shape[1:] != shape \
                and int(np.prod(frames.shape[1:])) == int(np.prod(shape)):
            squeeze = tuple(s for s in frames.shape[1:] if s != 1) == \
                tuple(s for s in shape if s != 1)
            if len(shape) == 1 or squeeze:
                frames = frames.reshape((frames.shape[0],) + shape)
            else:
                raise ValueError(
                    f"input frames have shape {frames.shape}, expected {want}: the sizes "
                    f"match but the layout is ambiguous; if they are in (C, H, W) order pass "
                    f"frames.reshape((len(frames),) + net.input_shape)")
        if frames.ndim < 1 or frames.shape[1:] != shape or frames.shape[0] < 1:
            raise ValueError(f"input frames have shape {frames.shape}, expected {want} "
                             f"(or a single frame {shape})")
        hi = 2 ** int(self.ir.graph["input_bits"]) - 1
        if frames.dtype.kind not in "iub" or frames.min() < 0 or frames.max() > hi:
            raise ValueError(f"input frames must be integers in [0, {hi}] "
                             f"(inputBits={self.ir.graph['input_bits']})")
        return frames.astype(np.int32)

    def _check_steps(self, steps_per_sample) -> int:
        if isinstance(steps_per_sample, (bool, np.bool_)) \
                or not isinstance(steps_per_sample, (int, np.integer)):
            raise TypeError(f"steps_per_sample={steps_per_sample!r} must be an int "
                            f"(timesteps T per sample)")
        if steps_per_sample < 1:
            raise ValueError(f"steps_per_sample={steps_per_sample} must be >= 1")
        return int(steps_per_sample)

    def _check_record(self, layers_to_record):
        """None (every neuron layer) or a set of known neuron-layer indices."""
        if layers_to_record is None:
            return None
        known = [ly.index for ly in layers(self.ir)
                 if ly.neuron is not None or ly.kind == "average"]
        try:
            record = {int(i) for i in layers_to_record}
        except (TypeError, ValueError):
            raise ValueError(f"layers_to_record={layers_to_record!r} must be layer indices "
                             f"from {known}") from None
        unknown = sorted(record - set(known))
        if unknown or not record:
            raise ValueError(f"layers_to_record: {unknown or 'empty'} are not neuron layers "
                             f"of this network (neuron layers: {known})")
        return record

    def host_estimate(self, samples: int = 1, steps_per_sample: int = 1,
                      layers_to_record=None, record_uv: bool = False) -> dict:
        """OS processes and host memory a run needs
        (:func:`compiler.passes.resources.host_estimate`)."""
        from compiler.passes.resources import host_estimate
        return host_estimate(self.ir, samples, steps_per_sample,
                             self._check_record(layers_to_record), record_uv)

    def predict(self, samples, steps_per_sample=None, force: bool = False,
                lanes: int = 1) -> np.ndarray:
        """Predicted labels, int64 ``(S,)``: the output neuron with the most spikes (the sum of
        its burst counts over the T steps; ties go to the lowest index), as ``qblif run``.
        ``steps_per_sample`` defaults to the file's ``/qblif/timesteps``; ``lanes``: as
        :meth:`run`."""
        if steps_per_sample is None:
            steps_per_sample = self.ir.graph.get("timesteps")
            if steps_per_sample is None:
                raise ValueError("the file has no /qblif/timesteps: pass steps_per_sample")
        last = self.output_index
        out = self.run(samples, steps_per_sample, layers_to_record=[last], force=force,
                       lanes=lanes)[last]
        return out.reshape(out.shape[0], out.shape[1], -1).sum(axis=1).argmax(axis=1)

    # running -----------------------------------------------------------
    def run(self, samples, steps_per_sample: int, record_uv: bool = False,
            layers_to_record=None, progress: bool = False, force: bool = False,
            models: str = "fast", engine: str = "lava", *, stream=None,
            reset: str = "sample", reset_interval=None, reset_offset: int = 0,
            input_transform: bool = False, timeline: bool = False, lanes: int = 1) -> dict:
        """Stream ``samples`` through one Lava run.

        samples: ints ``(S, *input_shape)`` (file order, ``(C, H, W)`` or ``(N,)``) in
        ``0 .. 2**input_bits - 1``; each is presented unchanged for ``steps_per_sample``
        steps T. Returns ``{layer index: counts}`` for every neuron layer, counts int32
        ``(S, T, *layer shape)`` (file order): the burst count n of each neuron at each
        of its T steps of each sample (for SDNN layers: the graded message sent, in
        units of 2**-6, signed; an input layer with a neuron is layer 0); with
        ``record_uv`` also ``("u", i)`` and ``("v", i)`` of the same shape (states after
        each step; not for SDNN layers, which have none). SDNN layers are never reset:
        their samples are not independent (``ir.graph["stateful"]``). Lava runs
        ``S*T + depth`` steps in total. ``layers_to_record``: layer indices to return
        (default every neuron layer; ``[net.output_index]`` saves a process per layer).
        ``progress``: show a tqdm bar (the run is then split into up to 50 chunks).

        Before Lava starts, :meth:`host_estimate` is checked against the documented limits
        (``compiler.passes.resources.MAX_PROCESSES``, ``MAX_MEMORY_FRACTION`` of the available
        memory): past them :class:`ResourceLimitError`, unless ``force``. The run is supervised
        (:mod:`qblif_lava.lava_session`): a dead worker raises ``WorkerDied``; SIGINT, SIGTERM
        and SIGHUP stop every worker and remove the run's files before they propagate.
        Raises ``TypeError``/``ValueError`` for a non-int ``steps_per_sample`` or < 1, unknown
        ``layers_to_record`` indices, or frames of the wrong size or range.
        ``models``: ``"fast"`` (default) or ``"stock"`` process models, bit-identical
        results (:func:`run_config`).
        ``engine``: ``"lava"`` (default) or ``"exact"``: the same counts from the batched
        exact engine (:mod:`compiler.engine.exact`, torch) instead of a Lava run, in the
        modes below too (``docs/exact_engine.md``; a layer kind it lacks raises
        NotImplementedError); ``last_run["lava_steps"]`` is then the Lava run's length it
        stands for.

        Time-varying input and other modes (``docs/coverage.md``):

        - ``stream``: samples are ``(S, T_in, *input_shape)``, one input per step (spikes,
          graded values; signed for an SDNN input), zeros for steps ``T_in .. T-1``
          (``T_in <= T``). None (default): a stream when ``samples`` has that many axes.
        - ``reset``: ``"sample"`` (default: every sample starts from zero state),
          ``"none"`` (continuous: never reset), ``"netx"`` (stock NetX's
          ``Network(reset_interval=, reset_offset=)`` schedule, to reproduce a stock run).
          ALIF (Lava ATRLIF) and resonate-and-fire (Lava RF) layers have no reset: networks
          with them run with ``"none"`` (other modes raise ValueError).
        - An input layer with a CUBA neuron (lava-dl's ``Input`` block) is driven by its
          bias, as stock NetX drives it: the samples are the bias mantissas (ints, signed),
          or with ``input_transform`` real values x mapped by the file's transform to
          ``rint(weight * x + bias)``.
        - ``timeline``: return every recorded layer's whole run instead of per-sample
          windows: ``{i: (S*T + depth, *shape)}`` (row k = Lava timestep k + 1), as a stock
          NetX run's sinks record it; average layers are left out.

        ``lanes``: L >= 1 samples side by side in one Lava run (every process carries L
        lanes on its last Lava axis), so the per-process cost is paid once per L samples;
        Lava then runs ``ceil(S/L)*T + depth`` steps (``last_run["lava_steps"]``) and the
        counts equal ``lanes=1``'s. L > 1 covers static frames and input streams (lane l
        of batch b carries sample ``b*L + l``) with ``reset="sample"`` through
        input/dense/conv/pool/flatten/average layers of QB-LIF or CUBA neurons;
        ``record_uv`` de-interleaves u and v per lane as the counts, ``timeline`` rebuilds
        the lanes=1 run's timeline; ``reset="netx"`` where every layer is still reset at each
        of its sample windows (:meth:`_refuse_lanes`); bias-driven input (with
        ``input_transform`` too); per-output axonal delays and recurrence (with
        ``reset="sample"``). Anything else (``reset="none"``, other netx schedules, delays
        or recurrence with a netx schedule, engine="exact", SDNN, per-synapse delays,
        other neurons) raises ValueError naming it (``docs/fast_execution.md``).
        """
        lanes = self._check_lanes(lanes)
        if engine not in ENGINES:
            raise ValueError(f"unknown engine {engine!r} (expected one of {', '.join(ENGINES)})")
        if engine == "exact":
            if lanes > 1:
                raise ValueError("lanes > 1 applies to engine='lava' (the exact engine "
                                 "batches samples itself); run with lanes=1")
            return self._run_exact(samples, steps_per_sample, record_uv, layers_to_record,
                                   progress, dict(stream=stream, reset=reset,
                                                  reset_interval=reset_interval,
                                                  reset_offset=reset_offset, timeline=timeline),
                                   input_transform)
        from lava.magma.core.run_conditions import RunSteps
        from compiler.emit import emit

        from compiler.passes.resources import check_host_estimate, host_estimate
        cfg = run_config(models)
        steps = self._check_steps(steps_per_sample)
        record = self._check_record(layers_to_record)
        frames, stream = self._input_frames(samples, steps, stream, input_transform)
        n_s = frames.shape[0]
        if lanes > 1:
            self._refuse_lanes(reset, steps, reset_interval, reset_offset)
            from compiler.emit import check_sample_lanes
            check_sample_lanes(self.ir, lanes, stock_models=models == "stock")
        est = host_estimate(self.ir, n_s, steps, record, record_uv)
        check_host_estimate(est, force)
        lead = 2 if stream else 1
        lava_frames = frames.transpose(tuple(range(lead)) +
                                       tuple(range(frames.ndim - 1, lead - 1, -1)))
        if lanes > 1:
            lava_frames = _to_sample_lanes(lava_frames, lanes)
        averages = [ly for ly in layers(self.ir) if ly.kind == "average"]
        if record is not None:   # an average is read out from its producer's counts
            record |= {ly.index - 1 for ly in averages if ly.index in record}
        em = None
        with _Session() as session:
            em = emit(self.ir, np.ascontiguousarray(lava_frames), steps, session.workdir,
                      record, record_uv, stream=stream, reset=reset,
                      reset_interval=reset_interval, reset_offset=reset_offset,
                      sample_lanes=lanes, stock_models=models == "stock")
            session.proc = em.source
            self._live.append(em.source)
            t0 = time.perf_counter()
            try:
                with tqdm(total=em.total_steps, unit="step", desc="Lava", disable=not progress,
                          leave=False) as bar, _one_blas_thread():
                    for chunk in _chunks(em.total_steps, 50 if progress else 1):
                        em.source.run(condition=RunSteps(num_steps=chunk), run_cfg=cfg)
                        bar.update(chunk)
                wall = time.perf_counter() - t0
                data = {i: read_recording(path, size, em.total_steps).T
                        for i, (_, path, size) in em.sinks.items()}        # (size, total)
                uv = {k: m.get_data() for k, m in em.monitors.items()}
            finally:
                self._live.remove(em.source)
        out, depth = {}, self.ir.graph["depth"]
        for ly in layers(self.ir):
            if ly.index not in em.sinks:
                continue
            cols = (np.arange(n_s)[:, None] * steps + ly.reset_offset - 1
                    + np.arange(steps)[None, :])
            if timeline:
                cols = np.arange(em.total_steps)[None, :]
            if lanes > 1:
                out[ly.index] = _unlane(data[ly.index], ly, lanes, n_s, steps, depth, timeline)
            else:
                block = data[ly.index][:, cols]             # (size, S, T)
                out[ly.index] = np.moveaxis(block, 0, -1).reshape(cols.shape + tuple(ly.shape))
            for var in ("u", "v") if record_uv and ("u", ly.index) in uv else ():
                neu = em.neurons[ly.index]
                series = np.asarray(next(iter(uv[(var, ly.index)][neu.name].values())))
                series = series.reshape((series.shape[0],)       # (total, *Lava shape)
                                        + lane_shape(tuple(ly.shape)[::-1], lanes))
                series = series.transpose((0,) + tuple(range(series.ndim - 1, 0, -1)))
                if lanes > 1:     # (total, L*C, ...) file order, lane-outer: as a Recorder's
                    out[(var, ly.index)] = _unlane(series.reshape(series.shape[0], -1).T, ly,
                                                   lanes, n_s, steps, depth,
                                                   timeline).astype(np.int32)
                else:
                    out[(var, ly.index)] = series[cols].astype(np.int32)
        for ly in averages if not timeline else ():
            if ly.index - 1 in out and (layers_to_record is None or ly.index in record):
                from compiler.forward import average_counts
                out[ly.index] = average_counts(out[ly.index - 1], ly.shape[0], lead=2)
        if layers_to_record is not None:
            out = {k: v for k, v in out.items()
                   if (k if isinstance(k, int) else k[1]) in {int(i) for i in layers_to_record}}
        self.last_run = dict(samples=n_s, steps=steps, lava_steps=em.total_steps,
                             wall_s=wall, steps_per_s=em.total_steps / wall,
                             processes=len(em.processes), host_estimate=est, models=models,
                             lanes=lanes)
        if timeline:
            return {k: v[0] for k, v in out.items()}
        from compiler.forward import input_steps
        self._measure(input_steps(frames, steps, stream), out)
        return out

    def auto_lanes(self, samples, *, models: str = "fast", engine: str = "lava",
                   stream=None, reset: str = "sample", input_transform: bool = False,
                   timeline: bool = False, record_uv: bool = False,
                   steps_per_sample=None, reset_interval=None, reset_offset: int = 0) -> int:
        """The sample lanes ``qblif run`` uses by default for a :meth:`run` of ``samples``
        with these arguments, where lanes cover the run (the counts are the same at any L):
        the fewest batches of at most ``AUTO_LANES`` samples, evenly filled
        (``ceil(S / ceil(S / AUTO_LANES))``: 33 samples run as 2 batches of 17 lanes, not 32
        + 1), else 1. ``AUTO_LANES`` is the fastest L measured for ``fmnist_qblif_conv``
        (docs/fast_execution.md). Lanes cover streams, ``record_uv``, ``timeline`` and
        ``input_transform`` (accepted as :meth:`run`'s arguments); a reset other than
        ``"sample"`` needs ``steps_per_sample`` to be judged (:meth:`_refuse_lanes`)."""
        arr = np.asarray(samples)
        n_s = int(arr.shape[0]) if arr.ndim else 1
        lanes = -(-n_s // -(-n_s // AUTO_LANES)) if n_s > 0 else 1
        if lanes <= 1 or engine != "lava":
            return 1
        try:
            if steps_per_sample is not None:
                steps_per_sample = self._check_steps(steps_per_sample)
            self._refuse_lanes(reset, steps_per_sample, reset_interval, reset_offset)
            from compiler.emit import check_sample_lanes
            check_sample_lanes(self.ir, lanes, stock_models=models == "stock")
        except (TypeError, ValueError):
            return 1
        return lanes

    def _check_lanes(self, lanes) -> int:
        if isinstance(lanes, bool) or not isinstance(lanes, (int, np.integer)):
            raise TypeError(f"lanes must be an int, got {type(lanes).__name__}")
        if lanes < 1:
            raise ValueError(f"lanes must be >= 1, got {lanes}")
        return int(lanes)

    def _refuse_lanes(self, reset, steps=None, reset_interval=None,
                      reset_offset: int = 0) -> None:
        """ValueError naming the reset schedule that lanes > 1 cannot run exactly.

        Lanes run sample ``b*L + l`` in lane l of batch b on steps ``b*T + 1 ..``, where
        ``lanes=1`` runs sample s on steps ``s*T + 1 ..`` after sample s-1. That is exact
        when every neuron layer is reset at the start of each of its sample windows
        (``t % T == reset_offset``, :mod:`compiler.passes.plan`) and on the same phase in
        every window: a schedule ``(R, o)`` with ``T % R == 0`` and
        ``o % R == reset_offset % R`` (``reset="sample"``, or ``"netx"`` with such an
        interval and offset). Otherwise a sample starts from the previous sample's state on
        the same timeline (``reset="none"``: never reset), which samples side by side cannot
        reproduce. ``steps`` None: only ``reset="sample"`` passes."""
        from compiler.passes.plan import reset_schedule
        if steps is None and reset != "sample":
            raise ValueError(f"lanes > 1 does not support reset={reset!r} without the steps "
                             "per sample; run with lanes=1")
        if reset == "sample":
            return
        mode = (f"reset={reset!r}" if reset != "netx" else
                f"reset='netx' (reset_interval={reset_interval}, reset_offset={reset_offset})")
        for ly in layers(self.ir):
            carry = None
            if ly.synapse is not None and per_output_delays(ly.synapse.delay,
                                                            ly.kind) is not None:
                carry = ("axonal delay line is cleared only with reset='sample', so inputs "
                         "of the previous sample arrive late in the next one")
            elif ly.synapse is not None and ly.synapse.weight_rec is not None:
                carry = ("recurrent feedback is gated only with reset='sample', so the "
                         "previous sample's last spikes reach the next one")
            if carry:
                raise ValueError(f"lanes > 1 does not support {mode}: layer {ly.index}'s "
                                 f"{carry}, which samples side by side cannot reproduce; "
                                 "run with lanes=1")
            want = reset_schedule(self.ir, ly, steps, "sample")
            if want is None:      # no reset in any mode (SDNN: check_sample_lanes says so)
                continue
            got = reset_schedule(self.ir, ly, steps, reset, reset_interval, reset_offset)
            if got is None:
                raise ValueError(
                    f"lanes > 1 does not support {mode}: layer {ly.index} is never reset, so "
                    "each sample starts from the previous sample's state on one timeline, "
                    "which samples side by side cannot reproduce; run with lanes=1")
            period, phase = got
            if steps % period or (phase - want[1]) % period:
                raise ValueError(
                    f"lanes > 1 does not support {mode}: layer {ly.index} is reset at steps "
                    f"t % {period} == {phase % period}, not at the start of each of its "
                    f"{steps}-step sample windows (t % {steps} == {want[1] % steps}), so a "
                    "sample carries the previous sample's state, which samples side by side "
                    "cannot reproduce (lanes need an interval dividing the steps per sample "
                    "and that phase); run with lanes=1")

    def _run_exact(self, samples, steps_per_sample, record_uv, layers_to_record, progress,
                   modes=None, input_transform=False):
        """:meth:`run` through :class:`compiler.engine.ExactEngine`; ``modes``: its
        ``stream``, ``reset``, ``reset_interval``, ``reset_offset``, ``timeline``."""
        from compiler.engine import ExactEngine
        modes = dict(modes or {})
        steps = self._check_steps(steps_per_sample)
        record = self._check_record(layers_to_record)
        frames, modes["stream"] = self._input_frames(samples, steps, modes.get("stream"),
                                                     input_transform)
        eng = ExactEngine(self.ir)
        out = eng.run(frames, steps, record_uv=record_uv, layers_to_record=record,
                      progress=progress, **modes)
        total = frames.shape[0] * steps + int(self.ir.graph["depth"])
        wall = eng.last_run["wall_s"]
        self.last_run = dict(samples=frames.shape[0], steps=steps, lava_steps=total, wall_s=wall,
                             steps_per_s=total / wall if wall > 0 else float("inf"),
                             processes=0, engine="exact", device=eng.last_run["device"],
                             threads=eng.threads)
        if modes.get("timeline"):       # as the Lava run's: average layers left out
            return {k: v for k, v in out.items()
                    if self.ir.nodes[k if isinstance(k, int) else k[1]]["layer"].kind
                    != "average"}
        from compiler.forward import input_steps
        self._measure(input_steps(frames, steps, modes["stream"]), out)
        return out

    def _input_frames(self, samples, steps: int, stream, input_transform: bool):
        """Checked int32 input ``(S, *shape)`` or stream ``(S, T_in, *shape)``, and whether it
        is a stream (see :meth:`run`)."""
        shape = self.input_shape
        arr = np.asarray(samples)
        if stream is None:
            stream = arr.ndim == len(shape) + 2
        head = layers(self.ir)[0]
        bias_driven = head.proc == "BiasNeuron"
        signed = head.proc == "Delta" or (head.kind != "input" and head.neuron is not None
                                          and head.neuron.kind == "SDNN")
        if not stream and not bias_driven and not input_transform and not signed:
            return self.check_frames(arr), False
        if not stream and arr.shape == shape:
            arr = arr[None]
        lead = 2 if stream else 1
        if arr.ndim != len(shape) + lead or arr.shape[lead:] != shape or arr.shape[0] < 1:
            want = "(samples, steps, " if stream else "(samples, "
            raise ValueError(f"input {'stream' if stream else 'frames'} have shape "
                             f"{arr.shape}, expected {want}{', '.join(map(str, shape))})")
        if stream and not 1 <= arr.shape[1] <= steps:
            raise ValueError(f"a stream of {arr.shape[1]} steps does not fit "
                             f"steps_per_sample={steps}")
        if input_transform:
            if not bias_driven:
                raise ValueError("input_transform applies to an input layer with a CUBA "
                                 "neuron (driven by its bias); this network has none")
            if arr.dtype.kind not in "iubf" or not np.all(np.isfinite(arr)):
                raise ValueError("input values must be finite numbers")
            w = 64.0 if head.weight is None else float(np.asarray(head.weight).reshape(-1)[0])
            b = 0.0 if head.bias is None else float(np.asarray(head.bias).reshape(-1)[0])
            arr = np.rint(w * arr.astype(np.float64) + b)
        elif arr.dtype.kind not in "iub":
            raise ValueError(f"input values must be integers, found dtype {arr.dtype}")
        if bias_driven:
            lo, hi, what = -(2 ** 24) + 1, 2 ** 24 - 1, "bias mantissas of the input neuron"
        elif signed:
            lo, hi, what = -(2 ** 23), 2 ** 23 - 1, "signed values of an SDNN input"
        else:
            lo, hi = 0, 2 ** int(self.ir.graph["input_bits"]) - 1
            what = f"integers (inputBits={self.ir.graph['input_bits']})"
        if arr.size and (arr.min() < lo or arr.max() > hi):
            raise ValueError(f"input values must be {what} in [{lo}, {hi}]")
        return arr.astype(np.int32), bool(stream)

    def _measure(self, per_step, out):
        """Activity statistics of the last run: spikes and SynOps per step per layer.
        per_step: the input the source sent on each step of each sample ``(S, T, *shape)``."""
        from compiler.passes.resources import synops_per_step
        n_s, steps = self.last_run["samples"], self.last_run["steps"]
        stats = {}

        def events(ly, values):   # SDNN: one event per non-zero graded message
            sd = ly is not None and ly.neuron is not None and ly.neuron.kind == "SDNN"
            return (values != 0).astype(np.int64) if sd else values

        for ly in layers(self.ir):
            if ly.index not in out or ly.kind == "average":
                continue
            if ly.kind == "input":   # SDNN delta encoder: no synapse of its own
                stats[ly.index] = dict(spikes_per_step=float(
                    events(ly, out[ly.index]).reshape(n_s, steps, -1).sum(2).mean()))
                continue
            src = producer(self.ir, ly.index)
            if src is None or (src.kind == "input" and src.neuron is None):
                cin = np.abs(per_step)
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
