"""Evaluation: input encoding, the forward readout, accuracy with spike and SynOps statistics.

Statistics (per test sample), over each layer's T-step window (what the chip computes in it;
one definition for windowed and ``T + latency`` simulations): ``spikes_per_neuron_step`` =
unit events (burst counts n, summed) over all spiking neurons / (neurons x T); SynOps = unit events x
fan-out (spec section 4), fan-out counting only synapses with a non-zero quantized weight
(what the compiler places): ``spike_synops_per_sample`` over the blocks fed by spikes,
``input_synops_per_sample`` for the graded input (payload x_int counts as x_int unit
events), ``synops_per_sample`` their sum (as ``qblif run`` measures it). For ReLU:
``synops_per_sample`` is the MAC count of one dense forward pass.
"""
from __future__ import annotations

import numpy as np
import torch

from qblif.core.data import load_dataset
from qblif.core.encoding import quantize_intensity
from qblif.core.errors import QblifError
from qblif.training.models import fanout_map, set_quantized


def encode(model, images: np.ndarray, input_bits: int) -> torch.Tensor:
    """Images (N, C, H, W) in [0, 1] -> model input: integer intensities as float32, shape
    (N, C, H, W) or (N, C*H*W) for a flat-input spiking model (time is added per batch)."""
    x = torch.from_numpy(quantize_intensity(images, input_bits).astype(np.float32))
    if model.neuron == "relu":
        return x / float(2 ** input_bits - 1)
    if model.flat_input:
        x = x.reshape(len(x), -1)
    return x


def sim_steps(model, timesteps: int) -> int:
    """Simulated steps for an input window of ``timesteps``: T for a windowed (feed-forward)
    network and ReLU, T + latency otherwise."""
    if model.neuron == "relu" or model.windowed:
        return int(timesteps)
    return int(timesteps) + model.latency


def logits_of(model, xb: torch.Tensor, steps: int, loss_scale: float = 1.0, record=False):
    """Forward one batch: ``(N, 10)`` logits (spike counts x loss_scale, or ReLU outputs)."""
    if model.neuron == "relu":
        out = model(xb)
        return (out, None) if record else out
    x = xb.unsqueeze(-1).expand(*xb.shape, steps).contiguous()
    if record:
        out, inputs = model(x, record=True)
        return out.sum(-1) * loss_scale, (inputs, out)
    return model(x).sum(-1) * loss_scale


def model_device(model) -> torch.device:
    """The device of a model's parameters (CPU for a model without any)."""
    p = next(model.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


@torch.no_grad()
def evaluate(model, images: np.ndarray, labels: np.ndarray, timesteps: int, input_bits: int,
             batch_size: int = 128, stats: bool = False) -> dict:
    """Accuracy (quantized mode) and, with ``stats``, spikes/neuron/step and SynOps per
    sample (see module doc)."""
    was_training = model.training
    model.eval()
    set_quantized(model, True)
    steps = sim_steps(model, timesteps)
    dev = model_device(model)
    x_all = encode(model, images, input_bits)
    y_all = torch.from_numpy(labels)
    correct = 0
    spikes = neurons = 0.0
    synops = input_ops = 0.0
    fanouts = masks = None
    span = int(timesteps)
    for i in range(0, len(x_all), batch_size):
        xb, yb = x_all[i:i + batch_size].to(dev), y_all[i:i + batch_size].to(dev)
        if not stats or model.neuron == "relu":
            logits = logits_of(model, xb, steps)
            correct += int((logits.argmax(1) == yb).sum())
            continue
        # one extra step: with delays, the delayed tensors then hold every block's emissions
        # of the ``steps`` simulated steps (lava-dl's delay_shift drops the last one)
        x = xb.unsqueeze(-1).expand(*xb.shape, steps + 1).contiguous()
        out, inputs = model(x, record=True)
        correct += int((out[..., :steps].sum(-1).argmax(1) == yb).sum())
        if fanouts is None:
            fanouts = [fanout_map(b, t.shape[1:-1]) for b, t in zip(model.blocks, inputs)]
            masks = window_masks(model, steps, timesteps)
            span = steps if has_axonal_delays(model) else int(timesteps)
        outputs = inputs[1:] + [out]
        for j, (x_in, y_out, fo) in enumerate(zip(inputs, outputs, fanouts)):
            if fo is None:                                         # Flatten
                continue
            if j == 0:     # graded input: payload x_int = x_int unit events, span steps
                input_ops += float((x_in[..., :span].sum((0, -1)) * fo).sum())
            else:          # spikes of the previous block in its T-step window
                synops += float((_windowed_sum(x_in, masks[j - 1]) * fo).sum())
            spikes += float(_windowed_sum(y_out, masks[j]).sum())
            if i == 0:
                neurons += y_out[0, ..., 0].numel()
    n = len(x_all)
    res = {"accuracy": correct / max(n, 1), "samples": n}
    if stats:
        if model.neuron == "relu":
            res.update(spikes_per_neuron_step=None, synops_per_sample=float(model.macs()),
                       spike_synops_per_sample=None, input_synops_per_sample=None)
        else:
            res.update(spikes_per_neuron_step=spikes / (neurons * n * span) if neurons else 0.0,
                       synops_per_sample=(synops + input_ops) / n,
                       spike_synops_per_sample=synops / n, input_synops_per_sample=input_ops / n)
    model.train(was_training)          # left in quantized mode (the evaluation/export default)
    return res


def has_axonal_delays(model) -> bool:
    """Whether a block has learnable axonal delays (lava-dl's ``delay=True``)."""
    return any(isinstance(getattr(b, "delay", None), torch.nn.Module)
               and getattr(b.delay, "init", False) for b in model.blocks)


def window_masks(model, steps: int, timesteps: int) -> list:
    """Per block, a 0/1 mask ``(1, S + 1)`` of the steps of its output (on the forward's time
    axis, ``S = steps`` plus the one extra step :func:`evaluate` runs) that the statistics
    count: its neurons' T-step window, steps ``0..T-1`` for a windowed network, else
    ``d .. d + T - 1`` from the block's depth d (one step per delayed synapse, where
    :func:`qblif.verify.slayer_counts` cuts the chip's windows). A network with axonal delays
    counts its whole simulation instead (steps ``1..S``, as the exact engine's evaluate)."""
    t = torch.arange(int(steps) + 1)
    if has_axonal_delays(model):
        return [((t >= 1) & (t <= int(steps))).float()[None]] * len(model.blocks)
    masks, depth = [], 0
    for b in model.blocks:
        depth += 0 if model.windowed or not getattr(b, "delay_shift", False) else 1
        masks.append(((t >= depth) & (t < depth + int(timesteps))).float()[None])
    return masks


def _windowed_sum(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``x`` ``(N, C, *spatial, S + 1)`` summed over the batch and the masked steps ->
    ``(C, *spatial)``."""
    m = mask.reshape(1, *([1] * (x.dim() - 3)), mask.shape[-1]).to(x.device)
    return (x.sum(0) * m).sum(-1)


def thresholds(model) -> dict:
    """Float thresholds of the spiking blocks (mean over channels when per-channel), by
    block index (a string)."""
    out = {}
    for i, b in enumerate(getattr(model, "blocks", [])):
        n = getattr(b, "neuron", None)
        if n is None:
            continue
        th = getattr(n, "threshold", None)
        if th is None:
            continue
        th = torch.as_tensor(th).detach().float()
        out[str(i)] = float(th.mean())
    return out


def evaluate_file(path: str, test_limit: int | None = None, threads: int = 1,
                  card: dict | None = None) -> dict:
    """Test fields of a model card (``test_accuracy``, ``test_samples``, spikes, SynOps),
    measured on the NetX file ``path`` (QB-LIF or lava-dl CUBA blocks) by SLAYER's quantized
    forward on the test split of its dataset (``card["dataset"]``, else the file's
    ``/qblif/dataset``), with the file's input bits and window T."""
    from qblif.training.slayer.hdf5 import load_network
    from qblif.training.models import SpikingNet
    torch.set_num_threads(int(threads))
    try:
        net = load_network(path)
    except (OSError, KeyError, ValueError) as exc:
        raise QblifError(f"cannot load {path}: {exc}") from None
    dataset = (card or {}).get("dataset") or net.dataset
    if not dataset or net.timesteps is None or net.input_bits is None:
        raise QblifError(f"{path} has no /qblif dataset, timesteps or inputBits metadata "
                         f"(not written by qblif train?)")
    model = SpikingNet.from_network(net, dataset, (card or {}).get("arch"))
    x, y = load_dataset(dataset, "test", test_limit)
    r = evaluate(model, x, y, int(net.timesteps), int(net.input_bits), stats=True)
    return {"dataset": dataset, "test_samples": r["samples"], "test_accuracy": r["accuracy"],
            "spikes_per_neuron_step": r["spikes_per_neuron_step"],
            "synops_per_sample": r["synops_per_sample"],
            "spike_synops_per_sample": r["spike_synops_per_sample"],
            "input_synops_per_sample": r["input_synops_per_sample"]}
