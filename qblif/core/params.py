"""Validation of QB-LIF parameters (spec section 1 ranges), shared by the Lava
process, the SLAYER export and the compiler.

Every check raises ``ValueError`` naming the parameter, the offending value and
the allowed range.
"""
from __future__ import annotations

import numbers

import numpy as np

from qblif.core.constants import DECAY_UNITY, GRADED_BURST_BITS, UV_BITS
from qblif.core.reference import RESET_MODES

DECAY_RANGE = (0, DECAY_UNITY - 1)  # 12-bit unsigned
VTH_RANGE = (1, 2 ** 17 - 1)       # 17-bit unsigned, > 0
# Lava's own LIF process (CUBA layers the compiler emits as LIF): it checks no range; its
# fixed-point model needs only ``vth << 6`` and ``bias`` in int32 and applies
# ``4096 - (du + 1)`` and ``4096 - dv``, so iDecay 0 (no current decay, du = -1) and
# vDecay 4096 (v = u + bias) are meaningful (stock NetX's neuron-less dense uses both).
LIF_VTH_RANGE = (1, 2 ** UV_BITS - 1)
LIF_IDECAY_RANGE = (0, DECAY_UNITY)
LIF_VDECAY_RANGE = (0, DECAY_UNITY)
MAX_AXON_DELAY = 62                # stock NetX clamps larger delays to 62 (Loihi 2: 6 bits)
BIAS_MANT_RANGE = (-4096, 4095)    # 13-bit signed
BIAS_EXP_RANGE = (-7, 7)           # 3-bit magnitude; negative means a right shift
MAX_BURST_RANGE = (1, 2 ** GRADED_BURST_BITS - 1)
WEIGHT_RANGE = (-256, 255)         # NetX weight mantissas (x 2^-6), 8-bit Loihi synapse
INPUT_BITS_RANGE = (1, 8)          # bits of the direct graded input (NetX /qblif/inputBits)
TIMESTEPS_RANGE = (1, 100_000)     # window T per sample (NetX /qblif/timesteps)


def message_bits(max_burst) -> int:
    """Payload bits of a graded burst event carrying n in 0..K: ``bit_length(K)`` (spec 4, 5)."""
    return int(max_burst).bit_length()


def _fmt(value) -> str:
    arr = np.asarray(value)
    if arr.ndim == 0:
        return repr(value)
    return f"array of shape {arr.shape} with min {arr.min()} and max {arr.max()}"


def check_shape(shape) -> tuple:
    """Return ``shape`` as a tuple of positive ints, or raise ``ValueError``."""
    if isinstance(shape, numbers.Integral):
        shape = (int(shape),)
    try:
        shape = tuple(int(s) for s in shape)
        ok = len(shape) > 0 and all(s > 0 for s in shape)
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ValueError(f"shape={shape!r} is invalid: expected a non-empty tuple of positive ints")
    return shape


def check_int_range(name: str, value, lo: int, hi: int, shape=None) -> np.ndarray:
    """Check that ``value`` (a scalar, or an array of ``shape`` when given) holds
    integers in ``[lo, hi]``; return it as an int64 array."""
    arr = np.asarray(value)
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.integer)
                                   or np.issubdtype(arr.dtype, np.floating)
                                   or arr.dtype == bool):
        raise ValueError(f"{name}={value!r} is invalid: expected an integer in [{lo}, {hi}]")
    if arr.size == 0 or not np.all(np.isfinite(arr)) or np.any(arr != np.round(arr)):
        raise ValueError(f"{name}={_fmt(value)} is invalid: expected integers in [{lo}, {hi}]")
    if arr.ndim > 0 and arr.size > 1:
        if shape is None:
            raise ValueError(f"{name}={_fmt(value)} must be a scalar, allowed range [{lo}, {hi}]")
        if arr.shape != tuple(shape):
            raise ValueError(f"{name} has shape {arr.shape}, expected a scalar or shape {tuple(shape)}")
    if np.any(arr < lo) or np.any(arr > hi):
        raise ValueError(f"{name}={_fmt(value)} is out of range: allowed [{lo}, {hi}]")
    return arr.astype(np.int64)


def check_reset_mode(reset_mode) -> str:
    if reset_mode not in RESET_MODES:
        raise ValueError(f"reset_mode={reset_mode!r} is invalid: expected one of {RESET_MODES}")
    return reset_mode


def check_reset_schedule(reset_interval, reset_offset):
    """``reset_interval`` is None (no periodic reset) or a positive int; ``reset_offset`` >= 0."""
    if reset_interval is not None:
        reset_interval = int(check_int_range("reset_interval", reset_interval, 1, 2 ** 31 - 1))
    reset_offset = int(check_int_range("reset_offset", reset_offset, 0, 2 ** 31 - 1))
    return reset_interval, reset_offset


def check_qblif_params(shape, du, dv, vth, bias_mant, bias_exp, max_burst, reset_mode,
                       reset_interval=None, reset_offset=0) -> dict:
    """Validate all QB-LIF parameters; return them normalised (ints or int arrays)."""
    shape = check_shape(shape)
    out = dict(
        shape=shape,
        du=int(check_int_range("du", du, *DECAY_RANGE)),
        dv=int(check_int_range("dv", dv, *DECAY_RANGE)),
        vth=check_int_range("vth", vth, *VTH_RANGE, shape=shape),
        bias_mant=check_int_range("bias_mant", bias_mant, *BIAS_MANT_RANGE, shape=shape),
        bias_exp=check_int_range("bias_exp", bias_exp, *BIAS_EXP_RANGE, shape=shape),
        max_burst=int(check_int_range("max_burst", max_burst, *MAX_BURST_RANGE)),
        reset_mode=check_reset_mode(reset_mode),
    )
    out["reset_interval"], out["reset_offset"] = check_reset_schedule(reset_interval, reset_offset)
    return out
