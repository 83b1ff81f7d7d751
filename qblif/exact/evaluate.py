"""``qblif evaluate`` through the exact engine: a model card's test fields (accuracy, spikes per
neuron per step, SynOps per sample) for a NetX file, defined exactly as
:func:`qblif.training.train.evaluate` (SLAYER's quantized forward) defines them, computed by
:class:`qblif.exact.ExactEngine` on the compiled IR.

Windows. SLAYER simulates a feed-forward file with a per-sample reset on the T-step window
(:func:`qblif.schedule.t_step_refusal` is None), and so does the engine: each layer's T-step
window. Anything else (recurrence, axonal delays, SDNN, ALIF/RF), or ``latency_window=True``,
runs ``S = T + latency`` steps (latency: the output layer's synaptic depth, delays included);
SLAYER's block at depth d answers on SLAYER step t what the compiled layer's window answers on
step ``t - d`` (nothing before: the shipped files have no bias), so the engine then runs each
layer for the ``S - d + 1`` window steps SLAYER simulates. Either way:

* accuracy: argmax of the output layer's counts over its first ``S - d`` window steps (T
  without axonal delays, as ``qblif run``);
* spikes per neuron per step: every neuron layer's counts over its T-step window divided by
  (neurons x samples x T);
* SynOps per sample: the input frame times the first layer's fan-out, T times, plus every later
  layer's input events (its producer's counts over the producer's T-step window) times its
  fan-out (:func:`qblif.core.numeric.fan_out`: synapses with a non-zero weight). Spikes and
  SynOps thus count what the chip does in each layer's window (docs/plots.md). A network with
  axonal delays keeps counting SLAYER's whole simulation (steps ``1..S``, S in the denominator).
"""
from __future__ import annotations

import time
from typing import Optional

import numpy as np
import torch

from qblif.exact import ops as ex
from qblif.ir import layers, producer
from qblif.core.numeric import fan_out
from qblif.core.errors import QblifError
from qblif.schedule import t_step_refusal


class EngineRefused(QblifError):
    """The exact engine cannot stand for SLAYER's evaluation of this file (``reason``)."""

    def __init__(self, path, reason: str):
        self.reason = reason
        super().__init__(f"{path}: the exact engine cannot evaluate it: {reason}; "
                         f"use --engine slayer")


def engine_refusal(ir) -> Optional[str]:
    """Why the engine cannot stand for SLAYER's evaluation of this IR (None if it can)."""
    if ir.graph.get("stateful"):
        return "it has SDNN layers (their state streams across samples)"
    from qblif.exact import kinds
    why = kinds.evaluate_refusal(ir)
    if why:
        return why
    for ly in layers(ir):
        if ly.neuron is not None and np.any(np.asarray(ly.neuron.bias_mant) != 0):
            return (f"layer {ly.index} has a bias (SLAYER integrates it before the layer's "
                    f"window)")
    return None


def _neuron_sums(c: torch.Tensor, k: int) -> torch.Tensor:
    """Per-neuron sums of a chunk's counts ``(B, steps, *shape)`` (the engine's layout; counts
    0..k), int64 on the CPU. torch reduces int16 and int32 several times faster than uint8 into
    a wider type: int16 where the chunk cannot overflow it."""
    c = c.reshape(-1, c[0, 0].numel())
    if c.dtype == torch.uint8 and c.shape[0] * k < 2 ** 15:
        s = c.to(torch.int16).sum(0, dtype=torch.int16)
    else:
        s = c.int().sum(0, dtype=torch.int32)       # a chunk's sums fit int32
    return s.cpu().long()


def evaluate_ir(ir, frames: np.ndarray, labels: np.ndarray, timesteps: int,
                threads: Optional[int] = None, device="cpu",
                batch_size: Optional[int] = None,
                latency_window: Optional[bool] = None) -> dict:
    """Card fields for integer ``frames (N, *input_shape)`` and ``labels (N,)`` (see the module
    doc). ``latency_window``: simulate SLAYER's ``T + latency`` steps (None: only where T-step
    windows do not suffice, :func:`qblif.schedule.t_step_refusal`). Returns ``accuracy``,
    ``samples``, ``spikes_per_neuron_step``, ``synops_per_sample``, ``spike_synops_per_sample``,
    ``input_synops_per_sample``, ``wall_s``, ``windows`` (``"T"`` or ``"T + latency"``) and
    ``simulated_steps`` (per image)."""
    from qblif.exact import ExactEngine, kinds
    t0 = time.perf_counter()
    syn_layers = [ly for ly in layers(ir) if ly.kind in ("dense", "conv", "pool")]
    out_ly = [ly for ly in layers(ir) if ly.neuron is not None][-1]
    if latency_window is None:
        latency_window = t_step_refusal(ir) is not None
    steps = int(timesteps)
    if latency_window:
        total = steps + int(out_ly.depth) + kinds.delay_steps(ir)     # S = T + latency
        win = {ly.index: total - ly.depth + 1 for ly in syn_layers}   # SLAYER steps 1..S
    else:
        total, win = steps, None                                      # each layer's T-step window
    scored = total - int(out_ly.depth) if latency_window else steps   # the output's first T steps
    # spikes and SynOps: each layer's T-step window; with axonal delays SLAYER's whole run
    span = total if kinds.delay_steps(ir) else steps
    eng = ExactEngine(ir, device=device, threads=threads, batch_size=batch_size)
    sums = {ly.index: 0 for ly in syn_layers}          # per neuron, over samples and steps
    correct = 0
    labels = np.asarray(labels)
    # T-step windows: every layer runs its window, and the native kernels count its spikes
    for start, chunk in eng.chunks(frames, total, layer_steps=win, file_order=False,
                                   batch_size=batch_size or eng.default_batch(total),
                                   count_sums=not latency_window):
        for ly in syn_layers:
            s = chunk.get(("sum", ly.index))
            if s is None:
                s = _neuron_sums(chunk[ly.index][:, :span], ly.max_burst)
            sums[ly.index] = sums[ly.index] + s.reshape(-1)
        o = chunk[out_ly.index]
        score = o[:, :scored].reshape(o.shape[0], scored, -1).sum(1)
        pred = score.argmax(1).cpu().numpy()
        correct += int((pred == labels[start:start + len(pred)]).sum())
    n = len(frames)
    for ly in syn_layers:   # per-neuron sums in file order
        s = np.asarray(sums[ly.index], np.int64).reshape(ex.inner_shape(ly.shape))
        sums[ly.index] = s.transpose(2, 0, 1) if s.ndim == 3 else s
    spikes = sum(float(s.sum()) for s in sums.values())
    neurons = sum(ly.size for ly in syn_layers)
    synops = input_ops = 0.0
    for ly in syn_layers:
        fo = fan_out(ly).astype(np.float64)
        src = producer(ir, ly.index)
        if src is None or (src.kind == "input" and src.neuron is None):
            frame_sum = np.asarray(frames).sum(0, dtype=np.int64).astype(np.float64)
            frame_sum = frame_sum.reshape(fo.shape)
            input_ops += span * float((frame_sum * fo).sum())
        else:
            synops += float((sums[src.index].reshape(fo.shape) * fo).sum())
    return dict(accuracy=correct / max(n, 1), samples=n,
                spikes_per_neuron_step=spikes / (neurons * n * span) if neurons and n else 0.0,
                synops_per_sample=(synops + input_ops) / n if n else 0.0,
                spike_synops_per_sample=synops / n if n else 0.0,
                input_synops_per_sample=input_ops / n if n else 0.0,
                wall_s=time.perf_counter() - t0,
                windows="T + latency" if span != steps else "T", simulated_steps=total)


def evaluate_file(path: str, test_limit: Optional[int] = None, threads: Optional[int] = None,
                  card: Optional[dict] = None, device="cpu",
                  latency_window: Optional[bool] = None) -> dict:
    """The test fields of a model card (as :func:`qblif.training.train.evaluate_file`)
    measured by the exact engine on the test split of the file's dataset (``card["dataset"]``,
    else the file's ``/qblif/dataset``). Raises :class:`qblif.core.errors.QblifError` where
    the file lacks the metadata, :class:`EngineRefused` where the engine cannot stand for
    SLAYER (:func:`engine_refusal`)."""
    from qblif.core.data import load_dataset_u8
    from qblif.core.encoding import quantize_u8
    from qblif.passes.pipeline import compile_ir       # the IR alone: no Lava import
    ir = compile_ir(path)
    g = ir.graph
    dataset = (card or {}).get("dataset") or g.get("dataset")
    if not dataset or not g.get("timesteps"):
        raise QblifError(f"{path} has no /qblif dataset, timesteps or inputBits metadata "
                         f"(not written by qblif train?)")
    why = engine_refusal(ir)
    if why is not None:
        raise EngineRefused(path, why)
    x, scale, y = load_dataset_u8(dataset, "test", test_limit)
    frames = quantize_u8(x, scale, int(g["input_bits"]))     # = quantize_intensity(load_dataset)
    frames = frames.reshape((len(frames),) + tuple(g["input_shape"]))
    r = evaluate_ir(ir, frames, y.astype(np.int64), int(g["timesteps"]), threads=threads,
                    device=device, latency_window=latency_window)
    return {"dataset": dataset, "test_samples": r["samples"], "test_accuracy": r["accuracy"],
            "spikes_per_neuron_step": r["spikes_per_neuron_step"],
            "synops_per_sample": r["synops_per_sample"],
            "spike_synops_per_sample": r["spike_synops_per_sample"],
            "input_synops_per_sample": r["input_synops_per_sample"], "windows": r["windows"]}
