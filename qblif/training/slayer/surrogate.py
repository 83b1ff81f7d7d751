"""ReLSG-ET surrogate gradient of the QB-LIF burst count (spec section 3).

Forward (exact, mirrors :func:`qblif.core.reference.burst_count`)::

    n = clamp(ceil(v / theta) - 1, 0, K)

which for integer ``v`` and ``theta`` equals ``0 if v <= theta else min(K, (v - 1) // theta)``
(the strict comparator). ``v`` and ``theta`` may be in any common unit (chip state units in the
quantized mode, SLAYER units = chip / 4096 in the float mode); ``theta > 0``.

Backward (rectified-linear surrogate with exponential tails), with ``x = v / theta``,
``w`` the tail width (in units of theta, the neuron's ``tau_grad``) and ``s`` the gradient scale
(``scale_grad``)::

    g(x) = s * 1                        if 0 <= x <= K
           s * exp(x / w)               if x < 0
           s * exp(-(x - K) / w)        if x > K

    dn/dv     = g(x) / theta
    dn/dtheta = -g(x) * x / theta = -g(x) * v / theta**2

``dn/dtheta`` is LSQ's straight-through gradient of ``v / theta`` through the rounding; the
reset ``v - n * theta`` adds its own term through autograd, so theta learns through both.
"""
from __future__ import annotations

import torch


def relsg_et_derivative(x: torch.Tensor, max_burst: int, width: float = 1.0,
                        scale: float = 1.0) -> torch.Tensor:
    """The surrogate slope ``g(x)`` of the count with respect to ``x = v / theta`` (see module doc)."""
    inside = torch.ones_like(x)
    below = torch.exp(torch.clamp(x, max=0) / width)
    above = torch.exp(-torch.clamp(x - max_burst, min=0) / width)
    g = torch.where(x < 0, below, torch.where(x > max_burst, above, inside))
    return scale * g


class ReLSGET(torch.autograd.Function):
    """Burst count with the ReLSG-ET surrogate gradient.

    ``ReLSGET.apply(v, theta, max_burst, width, scale) -> n``; ``v`` of any shape, ``theta`` a
    tensor broadcastable to ``v`` (scalar, or per channel as ``(C, 1, ...)``); ``n`` has ``v``'s
    shape and dtype and holds integers ``0..max_burst``.
    """

    @staticmethod
    def forward(ctx, v, theta, max_burst, width=1.0, scale=1.0):
        theta = theta.to(v.dtype)
        n = torch.clamp(torch.ceil(v / theta) - 1, 0, int(max_burst))
        ctx.save_for_backward(v, theta)
        ctx.max_burst, ctx.width, ctx.scale = int(max_burst), float(width), float(scale)
        return n

    @staticmethod
    def backward(ctx, grad_n):
        v, theta = ctx.saved_tensors
        x = v / theta
        g = relsg_et_derivative(x, ctx.max_burst, ctx.width, ctx.scale) * grad_n
        grad_v = g / theta if ctx.needs_input_grad[0] else None
        grad_theta = None
        if ctx.needs_input_grad[1]:
            grad_theta = (-g * x / theta).sum_to_size(theta.shape)
        return grad_v, grad_theta, None, None, None


def relsg_et(v, theta, max_burst, width=1.0, scale=1.0):
    """Functional form of :class:`ReLSGET`."""
    if not torch.is_tensor(theta):
        theta = torch.tensor(theta, dtype=v.dtype, device=v.device)
    return ReLSGET.apply(v, theta, max_burst, width, scale)
