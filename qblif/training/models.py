"""Network architectures for training: spiking (QB-LIF or CUBA SLAYER blocks) and ReLU.

Spiking networks take SLAYER tensors ``(N, C, H, W, T)`` (conv) or ``(N, F, T)`` (mlp),
time last, holding the integer input intensities of :mod:`qblif.core.encoding`; they
return the output layer's spike counts per step ``(N, 10, T)``. Every Dense/Conv/Pool
block adds one step of delay (``delay_shift=True``, as Lava's synapses), so the output is
zero for the first ``latency`` steps.

Architectures (``ARCHS``):
- ``mlp``: flatten - dense(H) - dense(10); H = 128 (digits) or 256 (fashion-mnist).
- ``conv``: conv(C1, 3x3, pad 1) - pool2 - conv(C2, 3x3, pad 1) - pool2 - flatten -
  [dense(128)] - dense(10); fashion-mnist (28x28): C1, C2 = 32, 64 with the dense(128)
  hidden layer (1x28x28-32c3-p2-64c3-p2-128-10); digits (8x8): 8, 16 without it.
- ``deep``: two 3x3 convs before each pool: fashion-mnist
  1x28x28-32c3-32c3-p2-64c3-64c3-p2-256-10; digits 1x8x8-8c3-8c3-p2-16c3-16c3-p2-64-10.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

import qblif.training.lavadl  # noqa: F401  (first: silences lava-dl's import-time prints)
from qblif.training.slayer.hdf5 import Network

from qblif.training.config import ARCHS  # noqa: E402  (one list, checked by the config)

from qblif.training.config import SPIKING as NEURONS  # noqa: E402
NUM_CLASSES = 10


def block_module(neuron: str, cuba_impl: str = "lava-dl"):
    """The SLAYER block module of a neuron family (``qblif`` or ``cuba``). ``cuba_impl="qblif"``
    gives CUBA through our plain-torch blocks (QB-LIF with K = 1 and reset ``zero``, whose
    forward is bit-identical to lava-dl's CUBA, without its CUDA kernels)."""
    if neuron == "qblif" or (neuron == "cuba" and cuba_impl == "qblif"):
        from qblif.training.slayer import block
        return block
    if neuron == "cuba":
        from lava.lib.dl.slayer.block import cuba
        return cuba
    raise ValueError(f"neuron={neuron!r} is invalid: choose one of {', '.join(NEURONS)}")


def set_quantized(model, flag: bool) -> None:
    """Switch QB-LIF blocks to their exact integer forward (no-op for ReLU and lava-dl CUBA,
    whose forward is always 8-bit quantized; CUBA through our blocks stays quantized too)."""
    neuron = getattr(model, "neuron", None)
    if neuron == "qblif":
        from qblif.training.slayer import set_quantized as _sq
        _sq(model, flag)
    elif neuron == "cuba" and getattr(model, "cuba_impl", "lava-dl") == "qblif":
        from qblif.training.slayer import set_quantized as _sq
        _sq(model, True)


def neuron_params(neuron: str, *, threshold: float = 1.0, current_decay: float = 1.0,
                  voltage_decay: float = 0.0, max_burst: int = 4, reset_mode: str = "subtract",
                  per_channel: bool = False, learn_threshold: bool = True,
                  cuba_impl: str = "lava-dl") -> dict:
    """SLAYER neuron parameters. Decays are fractions in [0, 1] (lava-dl CUBA units:
    ``iDecay = current_decay * 4096``); the threshold is in float weight units
    (``vThMant = threshold * 64``). QB-LIF adds ``max_burst`` K, ``reset_mode``,
    ``per_channel`` and a learnable threshold (``learn_threshold``); decays stay fixed
    (``requires_grad=False``) for both families. CUBA with ``cuba_impl="qblif"``: QB-LIF
    parameters with K = 1, reset ``zero`` and a fixed threshold (lava-dl CUBA's dynamics)."""
    if neuron == "cuba" and cuba_impl == "qblif":
        return neuron_params("qblif", threshold=threshold, current_decay=current_decay,
                             voltage_decay=voltage_decay, max_burst=1, reset_mode="zero",
                             per_channel=False, learn_threshold=False)
    p = {"threshold": float(threshold), "current_decay": float(current_decay),
         "voltage_decay": float(voltage_decay), "tau_grad": 1.0, "scale_grad": 1.0}
    if neuron == "qblif":
        p.update(max_burst=int(max_burst), reset_mode=reset_mode, per_channel=bool(per_channel),
                 learn_threshold=bool(learn_threshold), requires_grad=False)
    elif neuron == "cuba":
        p.update(requires_grad=False)
    else:
        raise ValueError(f"neuron={neuron!r} is invalid: choose one of {', '.join(NEURONS)}")
    return p


def arch_spec(dataset: str, arch: str):
    """Layer list of an architecture: tuples ('dense', out) | ('conv', out, k, pad) |
    ('pool', k) | ('flatten',)."""
    fm = dataset != "digits"
    if arch == "mlp":
        return [("flatten",), ("dense", 256 if fm else 128), ("dense", NUM_CLASSES)]
    if arch == "conv":
        if not fm:
            return [("conv", 8, 3, 1), ("pool", 2), ("conv", 16, 3, 1), ("pool", 2),
                    ("flatten",), ("dense", NUM_CLASSES)]
        return [("conv", 32, 3, 1), ("pool", 2), ("conv", 64, 3, 1), ("pool", 2),
                ("flatten",), ("dense", 128), ("dense", NUM_CLASSES)]
    if arch == "deep":
        c1, c2, hidden = (32, 64, 256) if fm else (8, 16, 64)
        return [("conv", c1, 3, 1), ("conv", c1, 3, 1), ("pool", 2), ("conv", c2, 3, 1),
                ("conv", c2, 3, 1), ("pool", 2), ("flatten",), ("dense", hidden),
                ("dense", NUM_CLASSES)]
    raise ValueError(f"arch={arch!r} is invalid: choose one of {', '.join(ARCHS)}")


def describe(dataset: str, arch: str, in_shape=None) -> str:
    """Human-readable architecture string, e.g. ``1x28x28-32c3-p2-64c3-p2-128-10``;
    ``in_shape`` defaults to the dataset's (:func:`qblif.core.data.input_shape`)."""
    if in_shape is None:
        from qblif.core.data import input_shape
        in_shape = input_shape(dataset)
    parts = ["x".join(str(s) for s in in_shape)]
    for layer in arch_spec(dataset, arch):
        if layer[0] == "dense":
            parts.append(str(layer[1]))
        elif layer[0] == "conv":
            parts.append(f"{layer[1]}c{layer[2]}")
        elif layer[0] == "pool":
            parts.append(f"p{layer[1]}")
    return "-".join(parts)


class SpikingNet(Network):
    """A chain of SLAYER blocks: a :class:`qblif.training.slayer.hdf5.Network` (the loaded-file
    network, whose ``input_shape`` is the NetX one: ``(C*H*W,)`` for an mlp, else ``(C, H, W)``)
    that knows its family, dataset and architecture. ``forward(x)`` -> output counts
    ``(N, 10, T)``; ``forward(x, record=True)`` also returns the list of every block's input
    tensor (for spike and SynOps statistics).

    Built from ``arch_spec(dataset, arch)`` with neuron ``params``, or around given ``blocks``
    (:meth:`from_network`: a loaded NetX file)."""

    def __init__(self, neuron: str, dataset: str, arch: str, in_shape, params: dict | None = None,
                 weight_scale: float = 1.0, cuba_impl: str = "lava-dl", blocks=None,
                 flat_input: bool | None = None, input_bits=None, timesteps=None):
        in_shape = tuple(int(s) for s in in_shape)                # (C, H, W)
        if blocks is None:
            blocks = _build_blocks(block_module(neuron, cuba_impl), dataset, arch, in_shape,
                                   params, weight_scale)
            flat_input = arch_spec(dataset, arch)[0][0] == "flatten"
        flat = (int(np.prod(in_shape)),) if flat_input else in_shape
        super().__init__(blocks, input_shape=flat, input_bits=input_bits, timesteps=timesteps,
                         dataset=dataset)
        self.neuron, self.arch, self.cuba_impl = neuron, arch, cuba_impl
        self.in_shape = in_shape
        self.flat_input = bool(flat_input)       # the mlp consumes flattened frames (N, C*H*W, T)
        self.channels_last = False      # windowed conv layers in channels-last memory (oneDNN)

    @classmethod
    def from_network(cls, net, dataset: str, arch: str | None = None, in_shape=None):
        """The :class:`SpikingNet` around a loaded network's blocks
        (``qblif.training.slayer.load_network``); ``in_shape`` defaults to the dataset's. A file
        of QB-LIF blocks is family ``qblif``, one of lava-dl CUBA blocks ``cuba``."""
        from qblif.training.slayer.neuron import Neuron
        if in_shape is None:
            from qblif.core.data import input_shape
            in_shape = input_shape(dataset)
        qblif = any(isinstance(getattr(b, "neuron", None), Neuron) for b in net.blocks)
        return cls("qblif" if qblif else "cuba", dataset, arch, in_shape, blocks=list(net.blocks),
                   flat_input=net.input_shape is not None and len(net.input_shape) == 1,
                   input_bits=net.input_bits, timesteps=net.timesteps)

    @property
    def net_input_shape(self) -> tuple:
        """Shape of one input frame as the first block sees it (NetX ``inputShape``)."""
        return self.input_shape

    @property
    def windowed(self) -> bool:
        """A feed-forward network of our blocks (:func:`qblif.training.slayer.block.windowable`):
        simulated on the T-step input window only, each block on its own window (what the
        chip's per-layer reset gives), instead of ``T + latency`` steps."""
        from qblif.training.slayer.block import windowable
        return all(windowable(b) for b in self.blocks)

    def forward(self, x, record: bool = False):
        """Output counts ``(N, 10, S)`` for the input ``(N, *input, S)``; with ``record``, also
        every block's input (time last). A :attr:`windowed` network runs each block on its
        S-step window with time folded into the batch; otherwise the blocks run in sequence,
        each adding a step of delay."""
        if self.windowed:
            return self._forward_window(x, record)
        inputs = []
        for b in self.blocks:
            inputs.append(x)
            x = b(x)
        return (x, inputs) if record else x

    def _forward_window(self, x, record):
        n, steps = x.shape[0], x.shape[-1]
        xf = x.movedim(-1, 1).reshape(n * steps, *x.shape[1:-1])
        if xf.dim() == 4 and self.channels_last:
            xf = xf.contiguous(memory_format=torch.channels_last)
        inputs = []
        for b in self.blocks:
            if record:
                inputs.append(_unfold(xf, n, steps))
            xf = b.forward_folded(xf, steps)
        out = _unfold(xf, n, steps)
        return (out, inputs) if record else out


def _unfold(xf: torch.Tensor, n: int, steps: int) -> torch.Tensor:
    """``(N*T, *shape)`` -> ``(N, *shape, T)``."""
    return xf.reshape(n, steps, *xf.shape[1:]).movedim(1, -1)


def _build_blocks(blk, dataset, arch, in_shape, params, weight_scale):
    blocks = []
    c, h, w = in_shape
    flat = None
    for layer in arch_spec(dataset, arch):
        kind = layer[0]
        if kind == "flatten":
            flat = c * h * w
            if blocks:                                       # mlp: input is fed flat
                blocks.append(blk.Flatten())
        elif kind == "dense":
            blocks.append(blk.Dense(params, flat, layer[1], weight_scale=weight_scale,
                                    delay_shift=True))
            flat = layer[1]
        elif kind == "conv":
            _, out, k, pad = layer
            blocks.append(blk.Conv(params, c, out, k, padding=pad, weight_scale=weight_scale,
                                   delay_shift=True))
            c, h, w = out, h + 2 * pad - k + 1, w + 2 * pad - k + 1
        elif kind == "pool":
            blocks.append(blk.Pool(params, layer[1], delay_shift=True))
            h, w = h // layer[1], w // layer[1]
    return blocks


class ReluNet(torch.nn.Module):
    """Non-spiking network of the same shape (ReLU, sum pooling as lava-dl's Pool,
    bias-free like the SLAYER blocks). Input ``(N, C, H, W)`` intensities in [0, 1];
    output logits ``(N, 10)``."""

    neuron = "relu"

    def __init__(self, dataset: str, arch: str, in_shape):
        super().__init__()
        self.dataset, self.arch = dataset, arch
        self.in_shape = tuple(int(s) for s in in_shape)
        c, h, w = self.in_shape
        layers = []
        flat = None
        spec = arch_spec(dataset, arch)
        for i, layer in enumerate(spec):
            last = i == len(spec) - 1
            if layer[0] == "flatten":
                layers.append(torch.nn.Flatten())
                flat = c * h * w
            elif layer[0] == "dense":
                layers.append(torch.nn.Linear(flat, layer[1], bias=False))
                flat = layer[1]
                if not last:
                    layers.append(torch.nn.ReLU())
            elif layer[0] == "conv":
                _, out, k, pad = layer
                layers += [torch.nn.Conv2d(c, out, k, padding=pad, bias=False), torch.nn.ReLU()]
                c, h, w = out, h + 2 * pad - k + 1, w + 2 * pad - k + 1
            elif layer[0] == "pool":
                layers.append(torch.nn.AvgPool2d(layer[1]))
                h, w = h // layer[1], w // layer[1]
        self.layers = torch.nn.Sequential(*layers)

    def forward(self, x):
        return self.layers(x)

    def macs(self) -> int:
        """Multiply-accumulates per sample (Linear and Conv2d layers)."""
        total = 0
        p = next(self.parameters())
        x = torch.zeros(1, *self.in_shape, dtype=p.dtype, device=p.device)
        for m in self.layers:
            y = m(x)
            if isinstance(m, torch.nn.Linear):
                total += m.in_features * m.out_features
            elif isinstance(m, torch.nn.Conv2d):
                total += int(y[0].numel()) * m.in_channels * m.kernel_size[0] * m.kernel_size[1]
            x = y
        return total


def build_model(neuron: str, dataset: str, arch: str, in_shape, params: dict | None = None,
                weight_scale: float = 1.0, cuba_impl: str = "lava-dl"):
    """A :class:`SpikingNet` (``qblif``/``cuba``) or a :class:`ReluNet` (``relu``)."""
    if neuron == "relu":
        return ReluNet(dataset, arch, in_shape)
    return SpikingNet(neuron, dataset, arch, in_shape, params, weight_scale=weight_scale,
                      cuba_impl=cuba_impl)


def fanout_map(block, in_shape, nonzero: bool = True) -> torch.Tensor | None:
    """Fan-out of each input position of a SLAYER block, shape ``in_shape`` (no time):
    the number of synapses one unit event at that position drives, i.e. output neurons
    reached through a non-zero quantized weight (``nonzero=False``: through any weight,
    the dense connectivity). ``None`` for blocks without a synapse (Flatten)."""
    syn = getattr(block, "synapse", None)
    if syn is None:
        return None
    with torch.no_grad():
        w = syn.weight
        hook = getattr(syn, "_pre_hook_fx", None)
        if hook is not None:
            w = hook(w)
        mask = (w != 0).float() if nonzero else torch.ones_like(w)
    if type(syn).__name__ == "Dense":
        return mask.reshape(mask.shape[0], -1).sum(0).reshape(tuple(in_shape))
    with torch.enable_grad():
        return _fanout_conv(syn, mask, tuple(in_shape))


def _fanout_conv(syn, mask, in_shape):
    x = torch.ones(1, *in_shape, 1, dtype=mask.dtype, device=mask.device, requires_grad=True)
    if type(syn).__name__ == "Pool":
        c = in_shape[0]
        xin = x.reshape(c, 1, *in_shape[1:], 1)
        y = F.conv3d(xin, mask, None, syn.stride, syn.padding, syn.dilation)
    else:
        y = F.conv3d(x, mask, None, syn.stride, syn.padding, syn.dilation, syn.groups)
    y.sum().backward()
    return x.grad[0, ..., 0].detach()
