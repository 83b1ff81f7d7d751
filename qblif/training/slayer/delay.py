"""Learnable axonal delays in plain torch, with the semantics of lava-dl's
``slayer.axon.Delay`` (``block(..., delay=True)``) on any device.

A block's output ``(N, C, ..., T)`` is delayed per channel by ``floor(d_c)`` steps, zeros
shifted in: ``y[:, c, ..., t] = x[:, c, ..., t - floor(d_c)]``. ``d`` (the ``delay``
parameter, in steps, float) is learnable and clamped to ``[0, max_delay]``; NetX export
writes ``floor(d)`` (lava-dl's ``export_hdf5``: dataset ``delay``, one value per output
neuron of a dense layer, one per channel of a conv layer).

The gradients are lava-dl's (``axon/delay.py``, ``_delayFunction``): the input gradient is
the output gradient shifted back by ``floor(d)``; the delay gradient is
``grad_scale * sum_{batch, t} g[t] * (y[t-1] - y[t])`` (``-dy/dt``, ``y[-1] = 0``). lava-dl
shifts each neuron in a Python loop on the CPU and JIT-compiles a CUDA kernel on the GPU;
this is one ``gather``, equal values and gradients (``tests/test_slayer_recurrent_delay.py``).
"""
from __future__ import annotations

import numpy as np
import torch

__all__ = ['Delay', 'shift', 'MAX_DELAY']

#: the largest delay NetX / Lava's ``DelayDense`` take (lava-dl's ``Delay(max_delay=62)``)
MAX_DELAY = 62


def shift(x: torch.Tensor, steps: torch.Tensor) -> torch.Tensor:
    """``x`` ``(N, *S, T)`` shifted later in time by the integer ``steps`` (shape ``S``,
    may be negative: earlier), zeros shifted in."""
    t_len = x.shape[-1]
    t = torch.arange(t_len, device=x.device)
    src = t - steps.to(device=x.device, dtype=torch.long).unsqueeze(-1)       # (*S, T)
    valid = (src >= 0) & (src < t_len)
    idx = src.clamp(0, t_len - 1).expand(x.shape)
    return torch.where(valid, x.gather(-1, idx), torch.zeros((), dtype=x.dtype,
                                                              device=x.device))


class _Delay(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, delay, grad_scale):
        steps = torch.floor(delay.detach()).long()
        out = shift(x, steps)
        ctx.save_for_backward(out, steps)
        ctx.grad_scale = grad_scale
        return out

    @staticmethod
    def backward(ctx, grad):
        out, steps = ctx.saved_tensors
        grad_x = shift(grad, -steps)
        grad_d = None
        if ctx.needs_input_grad[1]:
            prev = torch.nn.functional.pad(out[..., :-1], (1, 0))
            grad_d = (grad * (prev - out)).sum(dim=(0, -1)) * ctx.grad_scale
        return grad_x, grad_d, None


class Delay(torch.nn.Module):
    """Learnable per-channel axonal delay (lava-dl ``slayer.axon.Delay`` semantics).

    ``num_channels``: C (the block's output channels / neurons); None: set at the first
    forward (as lava-dl). Initial delays are uniform in [0, 1) as lava-dl's (all
    ``floor`` 0: no delay until trained or set). ``max_delay``: clamp (default 62, the
    NetX/Lava limit). Input ``(N, C, T)`` (one delay per neuron) or ``(N, C, H, W, T)`` (one
    per channel, broadcast over H, W)."""

    def __init__(self, num_channels: int | None = None, max_delay: int = MAX_DELAY,
                 grad_scale: float = 1.0):
        super().__init__()
        self.max_delay = max_delay
        self.grad_scale = float(grad_scale)
        self.init = num_channels is not None
        init = torch.rand(int(num_channels)) if self.init else torch.zeros(1)
        self.delay = torch.nn.Parameter(init.float(), requires_grad=True)
        self.clamp()

    def clamp(self) -> None:
        """Clamp the delays to ``[0, max_delay]`` in place (once they exist)."""
        if self.init:
            with torch.no_grad():
                self.delay.data.clamp_(0, self.max_delay)

    @property
    def shape(self):
        return self.delay.shape if self.init else None

    @property
    def steps(self) -> np.ndarray:
        """The integer delays ``floor(d)`` (int64 ``(C,)``), as NetX export writes them."""
        return torch.floor(self.delay.detach()).long().cpu().numpy()

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        saved = state_dict.get(prefix + 'delay')
        if saved is not None and saved.shape != self.delay.shape:   # a lazily sized module
            self.delay.data = torch.zeros_like(saved)
            self.init = True
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() < 3:
            raise ValueError(f"Delay expects (N, C, ..., T) input, got shape {tuple(x.shape)}")
        if not self.init:
            self.delay.data = torch.rand(x.shape[1], device=x.device)
            self.init = True
        self.clamp()
        if self.delay.shape[0] != x.shape[1]:
            raise ValueError(f"Delay has {self.delay.shape[0]} channels, input {x.shape[1]}")
        d = self.delay
        spatial = x.shape[1:-1]
        if int(np.prod(spatial)) != d.shape[0]:
            d = d.reshape((-1,) + (1,) * (len(spatial) - 1)).expand(spatial)
        return _Delay.apply(x, d, self.grad_scale)
