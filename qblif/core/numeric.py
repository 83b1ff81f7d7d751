"""Integer synapse arithmetic in file order (numpy, int64): the oracle's synapses
and the resource counter's connectivity. Shapes: ``x (C_in, H, W)``, conv weight
``(C_out, C_in/groups, kH, kW)`` (cross-correlation, as torch), pool kernel ``(kH, kW)``
applied per channel.
"""
from __future__ import annotations

import numpy as np

from qblif.core import reference


def valid_taps(size_in, size_out, k, s, p, d):
    """For kernel tap ``t``: (output index slice, input index slice) of valid positions."""
    out = []
    for t in range(k):
        o = np.arange(size_out)
        i = o * s - p + t * d
        ok = (i >= 0) & (i < size_in)
        out.append((o[ok], i[ok]))
    return out


def conv2d(x, w, stride, padding, dilation, groups, out_hw):
    """``y[co, oh, ow] = sum w[co, ci, kh, kw] * x[g*Cg + ci, oh*s - p + kh*d, ...]``."""
    x = np.asarray(x, np.int64)
    w = np.asarray(w, np.int64)
    c_out, cg, kh, kw = w.shape
    og = c_out // groups
    y = np.zeros((c_out,) + tuple(out_hw), np.int64)
    th = valid_taps(x.shape[1], out_hw[0], kh, stride[0], padding[0], dilation[0])
    tw = valid_taps(x.shape[2], out_hw[1], kw, stride[1], padding[1], dilation[1])
    for g in range(groups):
        xg = x[g * cg:(g + 1) * cg]
        wg = w[g * og:(g + 1) * og]
        for a, (oh, ih) in enumerate(th):
            for b, (ow, iw) in enumerate(tw):
                if oh.size and ow.size:
                    patch = xg[:, ih][:, :, iw]                     # (cg, |oh|, |ow|)
                    y[g * og:(g + 1) * og, oh[:, None], ow[None, :]] += \
                        np.tensordot(wg[:, :, a, b], patch, axes=(1, 0))
    return y


def pool2d(x, k, stride, padding, dilation, out_hw):
    """Per-channel weighted sum pooling (lava-dl ``Pool`` synapse)."""
    x = np.asarray(x, np.int64)
    c = x.shape[0]
    w = np.broadcast_to(np.asarray(k, np.int64), (c, 1) + np.shape(k))
    return conv2d(x, w, stride, padding, dilation, c, out_hw)


def signed_clamp(x, bits):
    """Lava ``Conv``'s fixed-point output wrap to ``bits`` signed bits."""
    base = 1 << bits
    return (x + base // 2) % base - base // 2


def wrap_synapse(ly, y):
    """The synapse output's integer width: int32 for Lava ``Dense``, 24 bits for ``Conv``."""
    if ly.kind == "dense":
        return np.asarray(y).astype(np.int32)
    return signed_clamp(np.asarray(y, np.int64), 24)


def synapse(ly, x):
    """Synaptic input (weight units) of layer ``ly`` for presynaptic values ``x`` (in_shape):
    dense ``W @ x`` (int32 as Lava ``Dense``); conv / pool wrapped to 24 bits as Lava ``Conv``."""
    if ly.kind == "dense":
        return wrap_synapse(ly, np.asarray(ly.weight, np.int64) @ np.asarray(x, np.int64).reshape(-1))
    if ly.kind == "conv":
        y = conv2d(x, ly.weight, ly.stride, ly.padding, ly.dilation, ly.groups, ly.shape[1:])
    else:
        y = pool2d(x, ly.weight, ly.stride, ly.padding, ly.dilation, ly.shape[1:])
    return wrap_synapse(ly, y)


def fan_out(ly) -> np.ndarray:
    """Number of non-zero synapses leaving each presynaptic neuron (shape ``in_shape``)."""
    if ly.kind == "dense":
        return (np.asarray(ly.weight) != 0).sum(axis=0).reshape(ly.in_shape)
    # the adjoint of the connectivity mask: fan_out[i] = sum_o mask(o, i)
    c_in = ly.in_shape[0]
    if ly.kind == "conv":
        mask = (np.asarray(ly.weight) != 0).astype(np.int64)
        groups = ly.groups
    else:
        mask = np.broadcast_to((np.asarray(ly.weight) != 0).astype(np.int64),
                               (c_in, 1) + ly.weight.shape)
        groups = c_in
    c_out, cg, kh, kw = mask.shape
    og = c_out // groups
    fo = np.zeros(ly.in_shape, np.int64)
    th = valid_taps(ly.in_shape[1], ly.shape[1], kh, ly.stride[0], ly.padding[0], ly.dilation[0])
    tw = valid_taps(ly.in_shape[2], ly.shape[2], kw, ly.stride[1], ly.padding[1], ly.dilation[1])
    for g in range(groups):
        for a, (oh, ih) in enumerate(th):
            for b, (ow, iw) in enumerate(tw):
                cnt = mask[g * og:(g + 1) * og, :, a, b].sum(axis=0)   # (cg,)
                if ih.size and iw.size:
                    np.add.at(fo, (slice(g * cg, (g + 1) * cg), ih[:, None], iw[None, :]),
                              cnt[:, None, None])
    return fo


def rf_process_params(sin_decay: int, cos_decay: int):
    """``(period, alpha)`` of Lava's RF process from a NetX RF neuron's ``sinDecay`` and
    ``cosDecay`` (units of 1/4096), as stock NetX derives them (lava-dl
    ``slayer.neuron.rf.neuron_params``)."""
    s, c = sin_decay / 4096, cos_decay / 4096
    return 1 / (np.arctan2(s, c) / 2 / np.pi), 1 - np.sqrt(s ** 2 + c ** 2)


def rf_fixed_decays(period: float, alpha: float, decay_bits: int = 12):
    """The integer sin/cos decays Lava's RF process computes from ``period`` and ``alpha``."""
    sin_decay = (1 - alpha) * np.sin(np.pi * 2 * 1 / period)
    cos_decay = (1 - alpha) * np.cos(np.pi * 2 * 1 / period)
    return int(np.int32(sin_decay * (1 << decay_bits))), int(np.int32(cos_decay * (1 << decay_bits)))


def graded_step(state, a, *, du, dv, vth, bias_mant, bias_exp):
    """One step of a graded-spike CUBA population (in place): the payload ``v >> 6`` where
    ``v > vth << 6`` (then v = 0), else 0."""
    state.u = reference.current_update(state.u, a, du)
    v = reference.voltage_update(state.v, state.u, dv,
                                 reference.effective_bias(bias_mant, bias_exp))
    spike = v > (np.asarray(vth, np.int64) << 6)
    state.v = np.where(spike, 0, v).astype(np.int32)
    return np.where(spike, np.right_shift(v, 6), 0).astype(np.int32)


def conv_out(size, k, s, p, d):
    """Output length of a convolution along one axis (torch / Lava formula)."""
    return (size + 2 * p - d * (k - 1) - 1) // s + 1


def average_counts(counts: np.ndarray, groups: int, lead: int = 1) -> np.ndarray:
    """lava-dl's ``average`` as an exact integer readout: the sum of each group of
    ``n / groups`` consecutive neurons (file order), per step: ``(*lead axes, *shape)`` ->
    ``(*lead axes, groups)``; lava-dl's mean is this sum divided by the group size."""
    c = np.asarray(counts)
    return c.reshape(c.shape[:lead] + (groups, -1)).sum(axis=-1).astype(c.dtype)


#: Lava's ``SignMode`` values (``lava.utils.weightutils``), by name
SIGN_MODES = ("NULL", "MIXED", "EXCITATORY", "INHIBITORY")


def lava_dense_weights(weights: np.ndarray, sign_mode: str, num_weight_bits: int) -> np.ndarray:
    """What Lava ``Dense``/``Conv`` hold for ``weights`` (ints, weight units): lava-nc 0.10's
    ``clip_weights(num_bits=8)`` then ``truncate_weights(num_weight_bits)`` of
    ``lava.utils.weightutils``, written out here so that the passes need no Lava import
    (tests/core check it against lava-nc's functions). sign_mode: one of
    :data:`SIGN_MODES`; ``MIXED`` weights keep ``num_weight_bits - 1`` magnitude bits, the
    others ``num_weight_bits`` (of 8). Returns int32."""
    if sign_mode not in SIGN_MODES:
        raise ValueError(f"sign_mode={sign_mode!r} (expected one of {SIGN_MODES})")
    mixed, inhibitory = int(sign_mode == "MIXED"), sign_mode == "INHIBITORY"
    w = np.asarray(weights).astype(np.int32)
    if inhibitory:
        w = -w
    w = np.clip(w, (-2 ** 8) * mixed, 2 ** 8 - 1)
    drop = 8 - int(num_weight_bits) + mixed
    w = (w >> drop) << drop
    return -w if inhibitory else w
