"""Weight quantization with NetX's exact semantics.

A dense layer's weights go to Lava ``Dense`` the way ``lava.lib.dl.netx`` hands
them over: ``netx.utils.optimize_weight_bits`` picks (scaled weights,
``num_weight_bits``, ``weight_exp``, sign mode); ``Dense``'s bit-accurate model
then applies ``lava.utils.weightutils.clip_weights(.., num_bits=8)`` and
``truncate_weights`` and right-shifts the accumulated sum by ``-weight_exp``.
This pass mirrors those three steps (netx.utils is mirrored, not imported: its
package imports torch) and demands that the synapse adds exactly the file's
integer weight per unit event with at most 8 weight bits; otherwise the weight
is *not representable* and the layer is rejected (NetX would silently lose bits, e.g. the lowest bit of an
odd weight in a mixed-sign matrix).

Conv and pool weights reach Lava ``Conv`` unchanged (Lava's Conv model applies
no exponent and no clipping), but must pass the same 8-bit test so that the
network maps onto a Loihi synapse.
"""
from __future__ import annotations

import numpy as np

from qblif.core.errors import CompileError
from qblif.ir import Synapse, synaptic_layers
from qblif.passes.declare import declare
from qblif.core.numeric import lava_dense_weights
from qblif.netx.check import ModelFileError, check_weight


def netx_optimize_weight_bits(weight: np.ndarray):
    """Mirror of ``lava.lib.dl.netx.utils.optimize_weight_bits`` (lava-dl 0.6.0).

    Returns ``(scaled int weights, num_weight_bits, weight_exponent, sign mode)``, the sign mode
    by name (:data:`qblif.core.numeric.SIGN_MODES`).
    The caller guarantees ``-256 <= weight <= 255`` and a non-zero matrix (NetX
    clips and prints a warning outside the range; we reject instead).
    """
    max_w, min_w = np.max(weight), np.min(weight)
    if max_w < 0:
        sign_mode, is_signed = "INHIBITORY", 0
        scale = -256 / min_w
    elif min_w >= 0:
        sign_mode, is_signed = "EXCITATORY", 0
        scale = 255 / max_w
    else:
        sign_mode, is_signed = "MIXED", 1
        scale = min(127 / max_w, -128 / min_w)
    scale_bits = int(np.floor(np.log2(scale))) + is_signed
    n = 8
    while n > 0 and np.sum(np.abs(weight / 2 ** n - np.round(weight / 2 ** n))) != 0:
        n -= 1
    n -= is_signed
    num_weight_bits = 8 - scale_bits - n
    scaled = np.left_shift(weight.astype(np.int32), scale_bits) if scale_bits >= 0 else \
        np.right_shift(weight.astype(np.int32), -scale_bits)
    return scaled.astype(np.int64), int(num_weight_bits), int(-scale_bits), sign_mode


def dense_effective(scaled, num_weight_bits, weight_exp, sign_mode) -> np.ndarray:
    """What Lava ``Dense`` (bit-accurate) adds per unit event: clip, truncate, exponent."""
    w = lava_dense_weights(scaled, sign_mode, num_weight_bits).astype(np.int64)
    if weight_exp >= 0:
        return np.left_shift(w, weight_exp), w
    if np.any(w % (1 << -weight_exp)):
        return None, w          # the shifted sum would floor: not exact
    return np.right_shift(w, -weight_exp), w


def netx_weights(w: np.ndarray, layer: int, key: str):
    """``(scaled weights, num_weight_bits, weight_exp)`` as NetX hands ``w`` (file ints) to
    Lava's ``Dense``; :class:`CompileError` unless that synapse adds exactly ``w``."""
    try:
        check_weight(layer, w, key)
    except ModelFileError as exc:
        raise CompileError.of(exc) from None
    if not np.any(w):
        return w.copy(), 1, 0
    scaled, bits, exp, mode = netx_optimize_weight_bits(w)
    eff, _ = dense_effective(scaled, bits, exp, mode)
    if bits > 8 or eff is None or not np.array_equal(eff, w):
        bad = np.argwhere(eff != w) if eff is not None else np.zeros((0, 2))
        where = f" (first at index {tuple(int(x) for x in bad[0])})" if len(bad) else ""
        where += f"; it would need {bits} weight bits" if bits > 8 else ""
        raise CompileError(f"weights are not representable exactly by an 8-bit Loihi "
                           f"synapse in {mode} sign mode with weight exponent {exp}"
                           f"{where}; mixed-sign weights must be even", layer, key)
    return scaled, bits, exp


@declare(reads=("layer.delay", "layer.groups", "layer.in_shape", "layer.kind",
               "layer.synapse",
               "layer.weight", "layer.weight_imag", "layer.weight_rec"),
         writes=("layer.synapse",),
         requires=())
def quantize(g):
    """Set ``layer.synapse`` (:class:`qblif.ir.Synapse`: NetX-scaled weights, exponent,
    weight bits, groups) per synaptic layer. A recurrent dense layer's input and recurrent
    weights share one exponent and bit width, optimized over both (as stock NetX does); a
    complex (RF) layer's real and imaginary parts are optimized apart (as stock NetX)."""
    for ly in synaptic_layers(g):
        w = np.asarray(ly.weight, np.int64)
        if ly.kind != "dense":   # Lava's Conv applies no exponent: the file's weights
            _, bits, _ = netx_weights(w, ly.index, "weight")
            ly.synapse = Synapse(weight=w, exp=0, bits=bits, groups=ly.groups, delay=ly.delay)
            continue
        rec = None if ly.weight_rec is None else np.asarray(ly.weight_rec, np.int64)
        both = w if rec is None else np.hstack([w, rec])
        scaled, bits, exp = netx_weights(both, ly.index,
                                         "weight" if rec is None else "weight, weight_rec")
        ly.synapse = Synapse(weight=scaled[:, :w.shape[1]], exp=exp, bits=bits, groups=1,
                             delay=ly.delay,
                             weight_rec=None if rec is None else scaled[:, w.shape[1]:])
        if ly.weight_imag is not None:
            wi, bi, ei = netx_weights(np.asarray(ly.weight_imag, np.int64), ly.index,
                                      "weight/imag")
            ly.synapse.imag = Synapse(weight=wi, exp=ei, bits=bi)
    return g
