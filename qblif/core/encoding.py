"""Input encoding shared by training and the compiler (direct, graded).

An image with intensities in [0, 1] is quantized to integers
``x_int = round(x * (2**bits - 1))`` in ``0..2**bits-1`` and presented unchanged
on every timestep as a graded input event of ``bits`` message bits; the first
synapse therefore adds ``w_int * x_int`` (weight units) each step. SLAYER sees the
same integers (as float tensors), so training and chip agree exactly.
"""
from __future__ import annotations

import numpy as np

from qblif.core.constants import DEFAULT_INPUT_BITS  # noqa: E402,F401 (re-exported)


def quantize_intensity(x, bits: int = DEFAULT_INPUT_BITS) -> np.ndarray:
    """Map intensities in [0, 1] (any shape) to int32 in ``0..2**bits-1`` (round half to even)."""
    if not 1 <= int(bits) <= 8:
        raise ValueError(f"input bits={bits!r} is out of range: allowed [1, 8]")
    x = np.clip(np.asarray(x, dtype=np.float64), 0.0, 1.0)
    return np.rint(x * (2 ** bits - 1)).astype(np.int32)


def quantize_u8(x_u8, scale: float, bits: int = DEFAULT_INPUT_BITS) -> np.ndarray:
    """:func:`quantize_intensity` of ``float32(x_u8) / float32(scale)`` (the images of
    :func:`qblif.core.data.load_dataset`), by a lookup table of the 256 byte values: the same
    int32 values, without a float64 pass over the images."""
    table = quantize_intensity(np.arange(256, dtype=np.uint8).astype(np.float32)
                               / np.float32(scale), bits)
    return table[np.asarray(x_u8, np.uint8)]


def direct_encode(x_int: np.ndarray, timesteps: int) -> np.ndarray:
    """Repeat integer frames over time: ``(..., ) -> (..., T)`` (time last, as SLAYER)."""
    x_int = np.asarray(x_int)
    return np.repeat(x_int[..., None], int(timesteps), axis=-1)
