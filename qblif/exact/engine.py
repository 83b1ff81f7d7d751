"""Batched exact engine: the compiled IR's fixed-point arithmetic in torch, CPU or CUDA,
for many samples at once. Count for count it equals :func:`qblif.exact.oracle.forward` (the
numpy oracle, built on :mod:`qblif.core.reference`) and so the emitted Lava graph.

Execution. Samples are cut into chunks of ``batch_size``; a chunk goes through the layers
in order. A synaptic layer computes its input for all ``B*T`` (sample, step) pairs of the
chunk at once (dense: one matrix product; conv: im2col + one matrix product; pool: strided
adds), then its neuron scans the T steps with a state of shape ``(B, *shape)``. The first
layer's input is the frame, the same on all T steps: its synapse runs once per sample.
3-D layers are held channels-last, ``(H, W, C)``, inside; results are in file order.

Exactness, by construction:

* Synapses sum integers. A float32 (float64) matrix product of integers is exact when the
  sum of absolute values of every output, ``max_o sum_i |w_oi| * max|x|``, is at most 2^24
  (2^53): every partial sum is then an integer the format holds. The engine computes that
  bound for every product from the weights and the input's bound (K for QB-LIF counts, the
  largest frame value, the measured largest value of graded SDNN messages) and picks
  float32, float64 or int64 (int64 products run on the CPU). Conv never goes through a
  library convolution (Winograd / FFT algorithms are not exact); dense wraps to int32 as
  Lava ``Dense``, conv and pool to 24 bits as Lava ``Conv`` (:mod:`qblif.core.numeric`).
* The neuron (spec section 1, :mod:`qblif.core.reference`): on the CPU the native kernel
  (:mod:`qblif.exact.native`, one pass per layer, uint8 counts, pooling fused where it
  can be); else (and on CUDA) two torch step functions: a wide one mirroring the reference's
  int32 casts and wraps in int64, for any input; and a narrow int32 one, used for a chunk
  when its largest synaptic input is below 2^17 and the bias below 2^24: u then stays within
  24 bits and no int32 sum can overflow, so the 24-bit wrap of ``u`` is the only wrap (none
  when ``du = 4095``). The burst is counted by K compares (``n = sum_j [v > j*theta]``, for
  K <= 8) or by a floor division.
* SDNN layers (Lava's sigma-delta models, as :class:`qblif.exact.oracle.SDNNState`) are never
  reset: their state runs from sample to sample and chunk to chunk, starting from the state
  the oracle's warm-up (:func:`_warmup`) leaves.

Extending: a layer kind is one function ``(ctx, layer, flow) -> flow`` in
:data:`qblif.exact.ops.LAYER_KINDS` or :data:`qblif.exact.kinds.LAYER_KINDS` (the coverage
kinds: axonal delays, dense_rec, graded-spike CUBA, average, bias-driven input), a synaptic
kind one in :data:`qblif.exact.ops.SYNAPSES`, a neuron kind one in
:data:`qblif.exact.ops.NEURONS`. This module only runs them over a network.
"""
from __future__ import annotations

import time
from typing import Iterator, Optional

import numpy as np
import torch

from qblif.core import reference
from qblif.core import numeric
from qblif.exact import kinds, ops
from qblif.exact import timeline as tl
from qblif.exact.oracle import SDNNState, check_no_reset
from qblif.exact.ops import (NEURONS, SYNAPSES, Ctx, Flow, QBLIFParams, SDNNTorch, Synapse,
                             default_threads, exact_float_mode, to_file_order)
from qblif.ir import layers

#: layer kind -> function ``(ctx, layer, flow) -> flow``: the base kinds
#: (:data:`qblif.exact.ops.LAYER_KINDS`) and the coverage kinds (:data:`qblif.exact.kinds.LAYER_KINDS`)
LAYER_KINDS: dict = {**ops.LAYER_KINDS, **kinds.LAYER_KINDS}

def _warmup(ly, a_in, steps):
    """Outputs of ``ly`` on global steps ``1..len(a_in)`` (before its first window), and the
    SDNN state it enters its window with (None for QB-LIF/CUBA, which reset there): what the
    streamed Lava pipeline computes before the layer's first window (numpy, exact)."""
    n, outs = ly.neuron, []
    if n.kind == "SDNN":
        st = SDNNState(ly)
        return [st.step(a) for a in a_in], st
    st = reference.QBLIFState.zeros(ly.shape)
    for k, a in enumerate(a_in, start=1):
        if (k - ly.reset_offset) % steps == 0:
            st = reference.QBLIFState.zeros(ly.shape)
        outs.append(reference.step(st, a, du=n.du, dv=n.dv, vth=n.vth, bias_mant=n.bias_mant,
                                   bias_exp=n.bias_exp, max_burst=n.max_burst,
                                   reset_mode=n.reset_mode).astype(np.int64))
    return outs, None


class ExactEngine:
    """The batched exact engine of a compiled IR (``net.ir``).

    device: ``"cpu"`` (default), ``"cuda"`` or a ``torch.device``. threads: torch CPU threads
    during a run (default: every core). batch_size: samples per chunk (default: about 2^22
    neuron-steps of the widest layer per chunk). native: the C kernels (default: where they
    build). sparse: with the native kernels, conv and dense synapses on spike counts fused into
    the scan (``conv_scan``, default True; False: library conv / GEMM, then the scan).
    """

    def __init__(self, ir, device="cpu", threads: Optional[int] = None,
                 batch_size: Optional[int] = None, native: Optional[bool] = None,
                 sparse: bool = True):
        self.ir = ir
        self.device = torch.device(device)
        if native is None or native:     # the C kernel of QB-LIF scans (CPU only)
            from qblif.exact.native import library
            ok = self.device.type == "cpu" and library() is not None
            if native and not ok:
                raise RuntimeError("the native QB-LIF kernel is not available "
                                   "(CPU device, a C compiler, QBLIF_NATIVE unset)")
            native = ok
        self.use_native = bool(native)
        self.sparse = bool(sparse)
        self.threads = default_threads() if threads is None else int(threads)
        self.batch_size = batch_size
        self.layers = layers(ir)
        for ly in self.layers:
            if ly.kind not in LAYER_KINDS:
                raise NotImplementedError(f"layer {ly.index}: the exact engine has no "
                                          f"'{ly.kind}' layers")
            if ly.neuron is not None and ly.neuron.kind not in NEURONS:
                raise NotImplementedError(f"layer {ly.index}: the exact engine has no "
                                          f"'{ly.neuron.kind}' neurons")
        self._syn, self._params = {}, {}

    # prepared per-layer data (lazily, cached) ------------------------------
    def synapse(self, ly) -> Synapse:
        if ly.index not in self._syn:
            self._syn[ly.index] = SYNAPSES[ly.kind][0](ly)
        return self._syn[ly.index]

    def params(self, ly, numpy: bool = False) -> QBLIFParams:
        """The layer's neuron parameters (numpy arrays, or int32 tensors on the device)."""
        key = (ly.index, numpy)
        if key not in self._params:
            p = QBLIFParams.of(ly)
            self._params[key] = p if numpy else p.on(self.device)
        return self._params[key]

    @property
    def input_shape(self) -> tuple:
        return tuple(self.ir.graph["input_shape"])

    @property
    def stateful(self) -> bool:
        return any(ly.neuron is not None and ly.neuron.kind == "SDNN" for ly in self.layers)

    def _sdnn_states(self, steps: int) -> dict:
        """SDNN states after the warm-up steps before each layer's first window (as the oracle)."""
        states, warm = {}, []
        for ly in self.layers:
            if ly.kind == "input":
                if ly.neuron is not None:
                    states[ly.index] = SDNNTorch(ly, SDNNState(ly), self.device)
                continue
            if ly.kind == "flatten":
                warm = [w.reshape(-1) for w in warm]
                continue
            if ly.kind == "average":         # a readout: no state, last
                continue
            a_warm = [np.zeros(ly.shape, np.int64)] + \
                [numeric.synapse(ly, w).reshape(ly.shape) for w in warm]
            warm, sd = _warmup(ly, a_warm, steps)
            if sd is not None:
                states[ly.index] = SDNNTorch(ly, sd, self.device)
        return states

    def default_batch(self, steps: int) -> int:
        """Samples per chunk: about 2^22 neuron-steps of the widest layer on the CPU (the
        chunk's tensors stay in the caches' reach), 2^26 on a GPU."""
        widest = max([ly.size for ly in self.layers if ly.neuron is not None] + [1])
        budget = 1 << (22 if self.device.type == "cpu" else 26)
        return max(1, min(1 << 14, budget // (widest * int(steps))))

    # running ---------------------------------------------------------------
    def chunks(self, frames, steps: int, record_uv: bool = False, layers_to_record=None,
               batch_size: Optional[int] = None, layer_steps: Optional[dict] = None,
               file_order: bool = True, stream: bool = False,
               count_sums: bool = False) -> Iterator:
        """Yield ``(start, {key: tensor})`` per chunk of samples, in order: the chunk's counts
        ``(B, T, *shape)`` int32 on the engine's device, file order (keys as :meth:`run`).
        ``layer_steps``: ``{layer index: k <= T}`` to run only the first k steps of a QB-LIF
        layer's window (its counts are then ``(B, k, *shape)``; later layers see k steps).
        ``file_order=False``: the engine's own contiguous layout (3-D layers ``(H, W, C)``) and
        count dtype (uint8 from the native kernel, else int32). ``stream``: frames are
        ``(S, T_in, *input_shape)``, one input per step (:func:`qblif.exact.oracle.input_steps`).
        ``count_sums`` (with ``file_order=False``): where a native kernel ran a recorded layer,
        also ``("sum", i)``: its per-neuron counts summed over the chunk's samples and the
        layer's steps, int64 ``(*inner_shape)``."""
        steps = int(steps)
        if steps < 1:
            raise ValueError(f"steps_per_sample={steps} must be >= 1")
        frames = np.asarray(frames)
        for ly in self.layers:       # ALIF / RF: no reset, no per-sample windows
            check_no_reset(ly, (steps, ly.reset_offset))
        if stream:
            if frames.ndim < 2 or frames.shape[2:] != self.input_shape:
                raise ValueError(f"an input stream has shape {frames.shape}, expected "
                                 f"(samples, steps, {', '.join(map(str, self.input_shape))})")
        elif frames.shape[1:] != self.input_shape:
            raise ValueError(f"input frames have shape {frames.shape}, expected "
                             f"(samples, {', '.join(map(str, self.input_shape))})")
        if record_uv and self.stateful:
            raise NotImplementedError("SDNN layers have no u, v states to record")
        record = {ly.index for ly in self.layers if ly.neuron is not None or ly.kind == "average"}
        if layers_to_record is not None:
            record &= {int(i) for i in layers_to_record}
        sdnn = self._sdnn_states(steps) if self.stateful else {}
        bs = int(batch_size or self.batch_size or self.default_batch(steps))
        xmax_all = int(np.abs(frames).max(initial=0))
        run_state: dict = {}
        with exact_float_mode(self.threads), torch.no_grad():
            for start in range(0, len(frames), bs):
                fr = frames[start:start + bs]
                if stream:        # (B, T, *shape): the source's value on every step
                    from qblif.exact.oracle import input_steps
                    fr = input_steps(fr, steps, True)
                x = torch.as_tensor(np.ascontiguousarray(fr), device=self.device).to(torch.int32)
                if x.dim() == 4 + bool(stream):
                    x = x.permute(*range(x.dim() - 3), x.dim() - 2, x.dim() - 1,
                                  x.dim() - 3).contiguous()
                out = {}
                ctx = Ctx(self, steps, record_uv, record, out, sdnn, dict(layer_steps or {}),
                          run_state, count_sums=count_sums and not file_order)
                flow = Flow(x, not stream, xmax_all)
                for ly in self.layers:
                    flow = LAYER_KINDS[ly.kind](ctx, ly, flow)
                # counts leave as int32 (the native kernel's are uint8 inside)
                yield start, ({k: to_file_order(v, 2).to(torch.int32) for k, v in out.items()}
                              if file_order else out)

    def run(self, frames, steps: int, record_uv: bool = False, layers_to_record=None,
            batch_size: Optional[int] = None, progress: bool = False, *, stream: bool = False,
            reset: str = "sample", reset_interval=None, reset_offset: int = 0,
            timeline: bool = False) -> dict:
        """``{layer index: counts}`` for every neuron layer (or ``layers_to_record``), counts
        int32 numpy ``(S, T, *shape)``, file order, as :func:`qblif.exact.oracle.forward` and
        ``CompiledNetwork.run``; with ``record_uv`` also ``("u", i)``, ``("v", i)``.
        Statistics of the run in ``self.last_run`` (``samples``, ``steps``, ``wall_s``,
        ``samples_per_s``, ``device``, ``threads``).

        Run modes, as :func:`qblif.exact.oracle.simulate`: ``stream`` (frames ``(S, T_in,
        *input_shape)``), ``reset`` / ``reset_interval`` / ``reset_offset``
        (:func:`qblif.schedule.reset_schedule`); ``timeline``: every layer's whole run
        ``{i: (S*T + depth, *shape)}`` instead of the windows. Any reset but ``"sample"``,
        ``timeline`` and ALIF / RF layers run on the global timeline
        (:mod:`qblif.exact.timeline`), the rest in per-sample batches."""
        from tqdm.auto import tqdm
        frames = np.asarray(frames)
        t0 = time.perf_counter()
        parts: dict = {}
        whole = tl.needs_timeline(self, reset, timeline)
        if whole:                                       # the whole run as one sequence
            parts = {k: [v] for k, v in tl.run(
                self, frames, steps, stream=bool(stream), reset=reset,
                reset_interval=reset_interval, reset_offset=reset_offset, record_uv=record_uv,
                layers_to_record=layers_to_record, timeline=timeline).items()}
        with tqdm(total=len(frames), unit="sample", desc="exact", disable=not progress,
                  leave=False) as bar:
            for start, chunk in self.chunks(frames, steps, record_uv, layers_to_record,
                                            batch_size, stream=bool(stream)) if not whole else ():
                for k, v in chunk.items():
                    parts.setdefault(k, []).append(v.cpu().numpy())
                bar.update(next(iter(chunk.values())).shape[0] if chunk else 0)
        out = {k: np.ascontiguousarray(np.concatenate(v)) for k, v in parts.items()}
        wall = time.perf_counter() - t0
        self.last_run = dict(samples=len(frames), steps=int(steps), wall_s=wall,
                             samples_per_s=len(frames) / wall if wall > 0 else float("inf"),
                             device=str(self.device), threads=self.threads)
        return out


def run_exact(ir, frames, steps: int, device="cpu", **kwargs) -> dict:
    """One-shot :meth:`ExactEngine.run`."""
    return ExactEngine(ir, device=device).run(frames, steps, **kwargs)
