"""Running a compiled IR in Lava: run configurations (fast and stock models), sample lanes
(L samples side by side on the last Lava axis, docs/fast_execution.md), and one supervised
run from emission to the recorded counts (:func:`run_lava`). :class:`qblif.api.CompiledNetwork`
calls it for ``engine="lava"``."""
from __future__ import annotations

import time

import numpy as np
from tqdm.auto import tqdm

from qblif.core.numeric import average_counts
from qblif.ir import layers, output_delays
from qblif.lava.procs.recorder.process import read_recording
from qblif.lava.procs.source.process import lane_shape
from qblif.lava.session import LavaSession
from qblif.schedule import reset_schedule


from qblif.core.constants import RUN_MODELS as MODELS  # noqa: E402
AUTO_LANES = 32   # CompiledNetwork.auto_lanes: the fastest L measured for fmnist_qblif_conv


def run_config(models: str = "fast") -> "Loihi2SimCfg":  # noqa: F821 (imported lazily)
    """Lava's ``fixed_pt`` run config for ``models``: ``"fast"`` (Lava's ``Dense``/``Conv``
    run by :mod:`qblif.lava.fastsyn`, QBLIF by its lean model) or ``"stock"`` (Lava's own
    ``Dense``/``Conv`` models and the previous QBLIF model: the in-run baseline). Both are
    bit-exact; see docs/fast_execution.md."""
    from lava.magma.core.run_configs import Loihi2SimCfg
    if models not in MODELS:
        raise ValueError(f"models={models!r} (expected one of {', '.join(MODELS)})")
    if models == "fast":
        from qblif.lava.fastsyn import fast_models
        return Loihi2SimCfg(select_tag="fixed_pt", exception_proc_model_map=fast_models())
    from qblif.lava.procs.qblif import QBLIF
    from qblif.lava.fastsyn.baseline import PyQBLIFModelFixedLegacy
    return Loihi2SimCfg(select_tag="fixed_pt",
                        exception_proc_model_map={QBLIF: PyQBLIFModelFixedLegacy})


def chunks(total: int, parts: int) -> list:
    """Split ``total`` steps into at most ``parts`` near-equal positive chunks."""
    parts = max(1, min(int(parts), int(total)))
    base, extra = divmod(int(total), parts)
    return [base + (i < extra) for i in range(parts)]


def one_blas_thread():
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


def to_sample_lanes(lava_frames: np.ndarray, lanes: int) -> np.ndarray:
    """Frames ``(S, *shape)`` (Lava order) -> ``(ceil(S/L), *shape[:-1], L*shape[-1])``:
    sample ``b*L + l`` in lane l of batch b (lane-outer on the last axis); a short last
    batch is padded with zero frames."""
    n_s, shape = lava_frames.shape[0], lava_frames.shape[1:]
    batches = -(-n_s // lanes)
    padded = np.zeros((batches * lanes,) + shape, lava_frames.dtype)
    padded[:n_s] = lava_frames
    laned = np.moveaxis(padded.reshape((batches, lanes) + shape), 1, -2)
    return laned.reshape((batches,) + shape[:-1] + (lanes * shape[-1],))


def from_sample_lanes(rec: np.ndarray, lanes: int, n_s: int, steps: int, offset: int,
                       shape) -> np.ndarray:
    """A laned recording ``(L*size, total)`` (lane l at rows ``l*size ..``, file order) ->
    counts ``(S, T, *shape)``: sample ``b*L + l`` is lane l at steps ``b*T + offset ..``."""
    batches = -(-n_s // lanes)
    cols = (np.arange(batches)[:, None] * steps + offset - 1 + np.arange(steps)[None, :])
    block = rec.reshape(lanes, -1, rec.shape[1])[:, :, cols]       # (L, size, B, T)
    block = block.transpose(2, 0, 3, 1).reshape((batches * lanes, steps, -1))[:n_s]
    return np.ascontiguousarray(block).reshape((n_s, steps) + tuple(shape))


def timeline_from_lanes(rec: np.ndarray, lanes: int, n_s: int, steps: int, offset: int,
                         shape, depth: int) -> np.ndarray:
    """A laned recording ``(L*size, total)`` -> the ``lanes=1`` run's whole timeline
    ``(1, S*T + depth, *shape)`` of a layer whose sample windows start at step ``offset``
    (valid where every layer is reset at each window start, :func:`refuse_lanes`):
    steps before the first window are lane 0's (every lane's, zero state and input), window
    step j of sample s is lane ``s % L``'s of batch ``s // L``, and the steps after the last
    window are the last sample's lane's after its batch (zero input, zero state)."""
    batches, size = -(-n_s // lanes), rec.shape[0] // lanes
    per_lane = rec.reshape(lanes, size, rec.shape[1])
    head = per_lane[0][:, :offset - 1].T                                   # (offset-1, size)
    windows = from_sample_lanes(rec, lanes, n_s, steps, offset, shape).reshape(n_s * steps,
                                                                               size)
    tail = per_lane[(n_s - 1) % lanes][:, batches * steps + offset - 1:batches * steps + depth].T
    return np.concatenate([head, windows, tail]).reshape((1, -1) + tuple(shape))


def unlane(rec: np.ndarray, ly, lanes: int, n_s: int, steps: int, depth: int,
            timeline: bool) -> np.ndarray:
    """Layer ``ly``'s laned series ``(L*size, total)`` (file order, lane-outer) -> the
    ``lanes=1`` run's sample windows, or with ``timeline`` its whole timeline."""
    if timeline:
        return timeline_from_lanes(rec, lanes, n_s, steps, ly.reset_offset, ly.shape, depth)
    return from_sample_lanes(rec, lanes, n_s, steps, ly.reset_offset, ly.shape)


class RunSession(LavaSession):
    """A supervised session whose process (the source) is set once emitted."""

    def __init__(self):
        super().__init__(None)


def refuse_lanes(ir, reset: str, steps=None, reset_interval=None,
                 reset_offset: int = 0) -> None:
    """ValueError naming the reset schedule that lanes > 1 cannot run exactly.

    Lanes run sample ``b*L + l`` in lane l of batch b on steps ``b*T + 1 ..``, where
    ``lanes=1`` runs sample s on steps ``s*T + 1 ..`` after sample s-1. That is exact
    when every neuron layer is reset at the start of each of its sample windows
    (``t % T == reset_offset``, :mod:`qblif.schedule`) and on the same phase in
    every window: a schedule ``(R, o)`` with ``T % R == 0`` and
    ``o % R == reset_offset % R`` (``reset="sample"``, or ``"netx"`` with such an
    interval and offset). Otherwise a sample starts from the previous sample's state on
    the same timeline (``reset="none"``: never reset), which samples side by side cannot
    reproduce. ``steps`` None: only ``reset="sample"`` passes."""
    if steps is None and reset != "sample":
        raise ValueError(f"lanes > 1 does not support reset={reset!r} without the steps "
                         "per sample; run with lanes=1")
    if reset == "sample":
        return
    mode = (f"reset={reset!r}" if reset != "netx" else
            f"reset='netx' (reset_interval={reset_interval}, reset_offset={reset_offset})")
    for ly in layers(ir):
        carry = None
        if output_delays(ly) is not None:
            carry = ("axonal delay line is cleared only with reset='sample', so inputs "
                     "of the previous sample arrive late in the next one")
        elif ly.synapse is not None and ly.synapse.weight_rec is not None:
            carry = ("recurrent feedback is gated only with reset='sample', so the "
                     "previous sample's last spikes reach the next one")
        if carry:
            raise ValueError(f"lanes > 1 does not support {mode}: layer {ly.index}'s "
                             f"{carry}, which samples side by side cannot reproduce; "
                             "run with lanes=1")
        want = reset_schedule(ir, ly, steps, "sample")
        if want is None:      # no reset in any mode (SDNN: check_sample_lanes says so)
            continue
        got = reset_schedule(ir, ly, steps, reset, reset_interval, reset_offset)
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


def run_lava(ir, frames: np.ndarray, stream: bool, steps: int, record, opts, live: list) -> tuple:
    """Emit ``ir`` for ``frames`` and run it in one supervised Lava run.

    frames: checked int32 ``(S, *input_shape)`` or a stream ``(S, T_in, *input_shape)``
    (file order); steps: T per sample; record: neuron-layer indices or None (all);
    opts: the run's :class:`qblif.api.RunOptions`; live: the caller's list of running
    sources (the process is on it while Lava runs, so the caller can stop it).
    Returns ``(out, stats)``: ``{layer or ("u"|"v", layer): (S, T, *shape)}`` counts (with
    ``opts.timeline``: ``(1, S*T + depth, *shape)``), and the run's statistics.
    """
    from lava.magma.core.run_conditions import RunSteps
    from qblif.lava.emit import emit
    lanes, cfg = opts.lanes, run_config(opts.models)
    n_s = frames.shape[0]
    lead = 2 if stream else 1
    lava_frames = frames.transpose(tuple(range(lead)) +
                                   tuple(range(frames.ndim - 1, lead - 1, -1)))
    if lanes > 1:
        lava_frames = to_sample_lanes(lava_frames, lanes)
    averages = [ly for ly in layers(ir) if ly.kind == "average"]
    if record is not None:   # an average is read out from its producer's counts
        record |= {ly.index - 1 for ly in averages if ly.index in record}
    em = None
    with RunSession() as session:
        em = emit(ir, np.ascontiguousarray(lava_frames), steps, session.workdir,
                  record, opts.record_uv, states=tuple(opts.record), stream=stream,
                  reset=opts.reset,
                  reset_interval=opts.reset_interval, reset_offset=opts.reset_offset,
                  sample_lanes=lanes, stock_models=opts.models == "stock")
        session.proc = em.source
        live.append(em.source)
        t0 = time.perf_counter()
        try:
            with tqdm(total=em.total_steps, unit="step", desc="Lava", disable=not opts.progress,
                      leave=False) as bar, one_blas_thread():
                for chunk in chunks(em.total_steps, 50 if opts.progress else 1):
                    em.source.run(condition=RunSteps(num_steps=chunk), run_cfg=cfg)
                    bar.update(chunk)
            wall = time.perf_counter() - t0
            data = {i: read_recording(path, size, em.total_steps).T
                    for i, (_, path, size) in em.sinks.items()}        # (size, total)
            uv = {k: read_recording(path, int(np.prod(shape)), em.total_steps)
                  .reshape((em.total_steps,) + shape) for k, (path, shape) in em.states.items()}
        finally:
            live.remove(em.source)
    out, depth = {}, ir.graph["depth"]
    for ly in layers(ir):
        if ly.index not in em.sinks:
            continue
        cols = (np.arange(n_s)[:, None] * steps + ly.reset_offset - 1
                + np.arange(steps)[None, :])
        if opts.timeline:
            cols = np.arange(em.total_steps)[None, :]
        if lanes > 1:
            out[ly.index] = unlane(data[ly.index], ly, lanes, n_s, steps, depth, opts.timeline)
        else:
            block = data[ly.index][:, cols]             # (size, S, T)
            out[ly.index] = np.moveaxis(block, 0, -1).reshape(cols.shape + tuple(ly.shape))
        for var in [name for name, i in uv if i == ly.index]:
            series = uv[(var, ly.index)]
            series = series.reshape((series.shape[0],)       # (total, *Lava shape)
                                    + lane_shape(tuple(ly.shape)[::-1], lanes))
            series = series.transpose((0,) + tuple(range(series.ndim - 1, 0, -1)))
            if lanes > 1:     # (total, L*C, ...) file order, lane-outer: as a Recorder's
                out[(var, ly.index)] = unlane(series.reshape(series.shape[0], -1).T, ly,
                                               lanes, n_s, steps, depth,
                                               opts.timeline).astype(np.int32)
            else:
                out[(var, ly.index)] = series[cols].astype(np.int32)
    for ly in averages if not opts.timeline else ():
        if ly.index - 1 in out and (opts.layers_to_record is None or ly.index in record):
            out[ly.index] = average_counts(out[ly.index - 1], ly.shape[0], lead=2)
    if opts.layers_to_record is not None:
        out = {k: v for k, v in out.items()
               if (k if isinstance(k, int) else k[1]) in {int(i) for i in opts.layers_to_record}}
    stats = dict(samples=n_s, steps=steps, lava_steps=em.total_steps, wall_s=wall,
                 steps_per_s=em.total_steps / wall, processes=len(em.processes),
                 models=opts.models, lanes=lanes)
    return out, stats
