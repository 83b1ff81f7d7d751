"""The public API: ``compile(path) -> CompiledNetwork``; ``CompiledNetwork.run(samples, T,
options)`` with the run's options as one :class:`RunOptions` (keyword arguments are accepted
too). ``engine="lava"`` runs the emitted Lava graph (:mod:`qblif.lava.runner`),
``engine="exact"`` the batched exact engine (:mod:`qblif.exact`): the same counts."""
from __future__ import annotations

import dataclasses
from typing import Optional

import numpy as np

from qblif.ir import layers, producer
from qblif.lava.emit import SDNN_STATES
from qblif.lava.runner import AUTO_LANES, MODELS, refuse_lanes, run_config, run_lava  # noqa: F401
from qblif.lava.session import stop_runtime
from qblif.passes.pipeline import compile_ir  # noqa: F401 (re-exported)
from qblif.schedule import RUN_RESETS

from qblif.core.constants import ENGINES  # noqa: E402


@dataclasses.dataclass(frozen=True)
class RunOptions:
    """How :meth:`CompiledNetwork.run` runs (every field is described there).

    ``RunOptions(engine="exact", reset="none")`` or the same as keywords of ``run``."""
    record_uv: bool = False
    layers_to_record: Optional[tuple] = None
    progress: bool = False
    force: bool = False
    models: str = "fast"
    engine: str = "lava"
    stream: Optional[bool] = None
    reset: str = "sample"
    reset_interval: Optional[int] = None
    reset_offset: int = 0
    input_transform: bool = False
    timeline: bool = False
    lanes: int = 1
    record: tuple = ()

    #: ``run``'s positional order after ``steps_per_sample`` (earlier releases)
    POSITIONAL = ("record_uv", "layers_to_record", "progress", "force", "models", "engine")

    def __post_init__(self):
        if self.engine not in ENGINES:
            raise ValueError(f"unknown engine {self.engine!r} (expected one of "
                             f"{', '.join(ENGINES)})")
        if self.models not in MODELS:
            raise ValueError(f"models={self.models!r} (expected one of {', '.join(MODELS)})")
        if self.reset not in RUN_RESETS:
            raise ValueError(f"reset={self.reset!r} (expected one of {', '.join(RUN_RESETS)})")
        if isinstance(self.lanes, bool) or not isinstance(self.lanes, (int, np.integer)):
            raise TypeError(f"lanes must be an int, got {type(self.lanes).__name__}")
        if self.lanes < 1:
            raise ValueError(f"lanes must be >= 1, got {self.lanes}")
        if isinstance(self.record, str) or not set(self.record) <= set(SDNN_STATES):
            raise ValueError(f"record={self.record!r}: expected a tuple of the SDNN states "
                             f"{', '.join(SDNN_STATES)}")
        if self.record and self.engine != "lava":
            raise ValueError(f"record={tuple(self.record)!r} reads Lava's sigma-delta "
                             f"processes: run with engine='lava'")
        if self.engine == "exact" and self.lanes > 1:
            raise ValueError("lanes > 1 applies to engine='lava' (the exact engine "
                             "batches samples itself); run with lanes=1")

    @classmethod
    def of(cls, options: Optional["RunOptions"] = None, positional: tuple = (),
           keywords: Optional[dict] = None) -> "RunOptions":
        """``options`` (default: the defaults) updated by ``run``'s positional and keyword
        arguments; an unknown keyword is a TypeError, as for any function."""
        fields = {f.name for f in dataclasses.fields(cls)}
        if len(positional) > len(cls.POSITIONAL):
            raise TypeError(f"run() takes at most {2 + len(cls.POSITIONAL)} positional "
                            f"arguments")
        changes = dict(zip(cls.POSITIONAL, positional))
        for k, v in (keywords or {}).items():
            if k not in fields:
                raise TypeError(f"run() got an unexpected keyword argument {k!r}")
            if k in changes:
                raise TypeError(f"run() got multiple values for argument {k!r}")
            changes[k] = v
        return dataclasses.replace(options or cls(), **changes)



def _events(ly, values):
    """Events a layer's output values make: SDNN one per non-zero graded message, else the
    counts (a burst of n: n unit events)."""
    sd = ly is not None and ly.neuron is not None and ly.neuron.kind == "SDNN"
    return (values != 0).astype(np.int64) if sd else values


def compile(path, encoding: str = "graded", input_bits=None,  # noqa: A001
            nir_options=None) -> "CompiledNetwork":
    """Read ``path`` (NetX HDF5, or NIR for a ``.nir`` path), run every pass of
    :data:`qblif.passes.PASSES` (:func:`compile_ir`), and wrap the IR for Lava and the
    exact engine. Raises :class:`CompileError` for any malformed or unsupported file.
    """
    return CompiledNetwork(compile_ir(path, encoding, input_bits, nir_options))


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

    def _steps(self, steps_per_sample):
        """``steps_per_sample``, or the file's ``/qblif/timesteps`` when None."""
        if steps_per_sample is None:
            steps_per_sample = self.ir.graph.get("timesteps")
            if steps_per_sample is None:
                raise ValueError("the file has no /qblif/timesteps: pass steps_per_sample")
        return steps_per_sample

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
        (:func:`qblif.passes.resources.host_estimate`)."""
        from qblif.passes.resources import host_estimate
        return host_estimate(self.ir, samples, steps_per_sample,
                             self._check_record(layers_to_record), record_uv)

    def predict(self, samples, steps_per_sample=None, force: bool = False,
                lanes: int = 1) -> np.ndarray:
        """Predicted labels, int64 ``(S,)``: the output neuron with the most spikes (the sum of
        its burst counts over the T steps; ties go to the lowest index), as ``qblif run``.
        ``steps_per_sample`` defaults to the file's ``/qblif/timesteps``; ``lanes``: as
        :meth:`run`."""
        steps_per_sample = self._steps(steps_per_sample)
        last = self.output_index
        out = self.run(samples, steps_per_sample, layers_to_record=[last], force=force,
                       lanes=lanes)[last]
        return out.reshape(out.shape[0], out.shape[1], -1).sum(axis=1).argmax(axis=1)

    # running -----------------------------------------------------------
    def run(self, samples, steps_per_sample: int, *positional,
            options: Optional[RunOptions] = None, **keywords) -> dict:
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
        ``record``: sigma-delta states to return too, a tuple of
        :data:`qblif.lava.emit.SDNN_STATES` (``"sigma"``, ``"act"``, ``"residue"``), as Lava's
        ``Sigma``/``Delta``/``SigmaDelta`` processes hold them after each step (units of
        2^-6): ``(name, i)`` of the counts' shape for every recorded SDNN layer that has
        the Var (a Sigma layer has only ``sigma``); engine ``"lava"`` only.
        ``progress``: show a tqdm bar (the run is then split into up to 50 chunks).

        Before Lava starts, :meth:`host_estimate` is checked against the documented limits
        (``qblif.passes.resources.MAX_PROCESSES``, ``MAX_MEMORY_FRACTION`` of the available
        memory): past them :class:`ResourceLimitError`, unless ``force``. The run is supervised
        (:mod:`qblif.lava.session`): a dead worker raises ``WorkerDied``; SIGINT, SIGTERM
        and SIGHUP stop every worker and remove the run's files before they propagate.
        Raises ``TypeError``/``ValueError`` for a non-int ``steps_per_sample`` or < 1, unknown
        ``layers_to_record`` indices, or frames of the wrong size or range.
        ``models``: ``"fast"`` (default) or ``"stock"`` process models, bit-identical
        results (:func:`run_config`).
        ``engine``: ``"lava"`` (default) or ``"exact"``: the same counts from the batched
        exact engine (:mod:`qblif.exact.engine`, torch) instead of a Lava run, in the
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
        of its sample windows (:func:`qblif.lava.runner.refuse_lanes`); bias-driven input (with
        ``input_transform`` too); per-output axonal delays and recurrence (with
        ``reset="sample"``). Anything else (``reset="none"``, other netx schedules, delays
        or recurrence with a netx schedule, engine="exact", SDNN, per-synapse delays,
        other neurons) raises ValueError naming it (``docs/fast_execution.md``).
        """
        opts = RunOptions.of(options, positional, keywords)
        steps = self._check_steps(steps_per_sample)
        record = self._check_record(opts.layers_to_record)
        frames, stream = self._input_frames(samples, steps, opts.stream, opts.input_transform)
        held = self.ir.graph.get("nir_held_input")
        if held and (stream or opts.reset != "sample"):
            what = "an input stream" if stream else f"reset={opts.reset!r}"
            raise ValueError(
                f"NIR layer(s) {held}: the 24-bit headroom was guaranteed for frames held "
                f"over each sample from zero state (docs/nir.md); a run with {what} needs "
                "the file compiled with --allow-inexact (nir_options=dict(allow_inexact=True))")
        if opts.engine == "exact":
            return self._run_exact(frames, stream, steps, record, opts)
        if opts.lanes > 1:
            refuse_lanes(self.ir, opts.reset, steps, opts.reset_interval, opts.reset_offset)
            from qblif.lava.emit import check_sample_lanes
            check_sample_lanes(self.ir, opts.lanes, stock_models=opts.models == "stock")
        from qblif.passes.resources import check_host_estimate, host_estimate
        est = host_estimate(self.ir, frames.shape[0], steps, record, opts.record_uv,
                            tuple(opts.record))
        check_host_estimate(est, opts.force)
        out, self.last_run = run_lava(self.ir, frames, stream, steps, record, opts, self._live)
        self.last_run["host_estimate"] = est
        if opts.timeline:
            return {k: v[0] for k, v in out.items()}
        from qblif.exact.oracle import input_steps
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
        ``"sample"`` needs ``steps_per_sample`` to be judged (:func:`qblif.lava.runner.refuse_lanes`)."""
        arr = np.asarray(samples)
        n_s = int(arr.shape[0]) if arr.ndim else 1
        lanes = -(-n_s // -(-n_s // AUTO_LANES)) if n_s > 0 else 1
        if lanes <= 1 or engine != "lava":
            return 1
        try:
            if steps_per_sample is not None:
                steps_per_sample = self._check_steps(steps_per_sample)
            refuse_lanes(self.ir, reset, steps_per_sample, reset_interval, reset_offset)
            from qblif.lava.emit import check_sample_lanes
            check_sample_lanes(self.ir, lanes, stock_models=models == "stock")
        except (TypeError, ValueError):
            return 1
        return lanes

    def _run_exact(self, frames, stream: bool, steps: int, record, opts: RunOptions) -> dict:
        """:meth:`run` through :class:`qblif.exact.ExactEngine` (checked frames)."""
        from qblif.exact import ExactEngine
        eng = ExactEngine(self.ir)
        out = eng.run(frames, steps, record_uv=opts.record_uv, layers_to_record=record,
                      progress=opts.progress, stream=stream, reset=opts.reset,
                      reset_interval=opts.reset_interval, reset_offset=opts.reset_offset,
                      timeline=opts.timeline)
        total = frames.shape[0] * steps + int(self.ir.graph["depth"])
        wall = eng.last_run["wall_s"]
        self.last_run = dict(samples=frames.shape[0], steps=steps, lava_steps=total, wall_s=wall,
                             steps_per_s=total / wall if wall > 0 else float("inf"),
                             processes=0, engine="exact", device=eng.last_run["device"],
                             threads=eng.threads)
        if opts.timeline:       # as the Lava run's: average layers left out
            return {k: v for k, v in out.items()
                    if self.ir.nodes[k if isinstance(k, int) else k[1]]["layer"].kind
                    != "average"}
        from qblif.exact.oracle import input_steps
        self._measure(input_steps(frames, steps, stream), out)
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
        signed = self.ir.graph["input_message"].signed   # an SDNN takes the frames
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

    def input_events(self, per_step, out) -> dict:
        """Presynaptic events of each synaptic layer in the last run: ``{index: int array
        (samples, steps, *in_shape)}`` (unit events: a burst of n counts n; an SDNN message
        1). per_step: the input the source sent on each step ``(S, T, *shape)``; out: the
        run's counts. A layer whose producer was not recorded is left out."""
        n_s, steps = self.last_run["samples"], self.last_run["steps"]
        ev = {}
        for ly in layers(self.ir):
            if ly.index not in out or not ly.synaptic:
                continue
            src = producer(self.ir, ly.index)
            if src is None or (src.kind == "input" and src.neuron is None):
                cin = np.abs(per_step)
            elif src.index in out:
                cin = _events(src, out[src.index])
            else:
                continue
            ev[ly.index] = cin.reshape((n_s, steps) + tuple(ly.in_shape))
        return ev

    def _measure(self, per_step, out):
        """Activity statistics of the last run: spikes and SynOps per step per layer.
        per_step: the input the source sent on each step of each sample ``(S, T, *shape)``."""
        from qblif.passes.resources import synops_per_step
        n_s, steps = self.last_run["samples"], self.last_run["steps"]
        stats = {}
        ev = self.input_events(per_step, out)
        for ly in layers(self.ir):
            if ly.index not in out or ly.kind == "average":
                continue
            spikes = float(_events(ly, out[ly.index]).reshape(n_s, steps, -1).sum(2).mean())
            if ly.kind == "input":   # SDNN delta encoder: no synapse of its own
                stats[ly.index] = dict(spikes_per_step=spikes)
            elif ly.index in ev:
                cin = ev[ly.index]
                stats[ly.index] = dict(
                    synops_per_step=synops_per_step(ly, cin),
                    in_events_per_step=float(cin.reshape(n_s, steps, -1).sum(2).mean()),
                    spikes_per_step=spikes)
        self.last_run["layers"] = stats
        self.last_run["events"] = ev

    def report(self) -> str:
        from qblif.viz.report import text_report
        return text_report(self)
