"""Spike-for-spike comparison of a compiled Lava run with SLAYER's quantized forward, and
with the batched exact engine (:func:`exact_counts`, the fast reference of any compiled IR).

:func:`slayer_counts` runs the exported network (``qblif.training.slayer.load_network``)
in quantized mode and cuts each layer's output to the window that
:meth:`CompiledNetwork.run` reports: the layer at synaptic depth d answers to
sample input on SLAYER steps ``d .. d+T-1`` (each Dense/Conv adds one step, as
lava-dl's ``delay_shift``). SLAYER is fed ``T + depth`` steps of each frame, so
every window is complete. Axonal delays need no shift: the compiled graph delays what
SLAYER delays (docs/coverage.md, "Axonal delays"); give ``steps`` room for them
(``T_in + latency``). This imports torch: keep it out of Lava model modules.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from qblif.ir import layers


@dataclass
class Mismatch:
    """The first differing count: layer index, sample, step within the sample, neuron index."""
    layer: int
    sample: int
    step: int
    neuron: tuple
    lava: int
    slayer: int
    labels: tuple = ("Lava", "SLAYER")

    def __str__(self) -> str:
        return (f"layer {self.layer}, sample {self.sample}, step {self.step}, neuron {self.neuron}: "
                f"{self.labels[0]} {self.lava} vs {self.labels[1]} {self.slayer}")


def slayer_counts(path, ir, frames: np.ndarray, steps: int) -> dict:
    """SLAYER counts ``{layer index: int32 (S, T, *shape)}`` aligned with ``CompiledNetwork.run``.

    frames: ints ``(S, *input_shape)`` as given to ``run``; steps: T per sample.
    """
    import torch

    from qblif.core.encoding import direct_encode
    from qblif.training.slayer import load_network, set_quantized

    net = load_network(path)
    set_quantized(net, True)
    net.eval()
    neuron_layers = [ly for ly in layers(ir) if ly.neuron is not None]
    total = int(steps) + max(ly.depth for ly in neuron_layers)
    x = torch.tensor(direct_encode(frames, total), dtype=torch.float32)  # small ints: exact
    per_block = []
    with torch.no_grad():
        for block in net.blocks:
            x = block(x)
            per_block.append(x)
    out = {}
    for ly in neuron_layers:
        y = per_block[ly.index][..., ly.depth:ly.depth + steps].numpy()
        y = np.moveaxis(y, -1, 1).reshape((len(frames), steps) + tuple(ly.shape))
        out[ly.index] = np.rint(y).astype(np.int32)
    return out


def exact_counts(ir, frames: np.ndarray, steps: int, layers_to_record=None) -> dict:
    """Counts ``{layer index: int32 (S, T, *shape)}`` of the batched exact engine
    (:class:`qblif.exact.ExactEngine`, CPU): what ``CompiledNetwork.run`` must return,
    computed without Lava (SDNN layers included)."""
    from qblif.exact import ExactEngine
    return ExactEngine(ir).run(frames, steps, layers_to_record=layers_to_record)


def first_mismatch(lava: dict, slayer: dict, labels=("Lava", "SLAYER")) -> Optional[Mismatch]:
    """The first differing count over layers (in order), samples, steps, neurons; None if equal.
    ``labels``: the names of the two sides, for the message."""
    for idx in sorted(k for k in slayer if not isinstance(k, tuple)):
        a, b = lava[idx], slayer[idx]
        if a.shape != b.shape:
            raise ValueError(f"layer {idx}: {labels[0]} counts {a.shape} vs {labels[1]} {b.shape}")
        bad = np.argwhere(a != b)
        if len(bad):
            s, t, *n = (int(i) for i in bad[0])
            return Mismatch(idx, s, t, tuple(n), int(a[(s, t, *n)]), int(b[(s, t, *n)]),
                            tuple(labels))
    return None
