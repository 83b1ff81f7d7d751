"""Every bit width, shift and limit of the project, once (spec: ../shared/QBLIF_SPEC.md).

Units: a *mantissa* is an integer in the chip's fixed point; the 2^6 shift (``ACT_SHIFT``)
scales threshold and bias mantissas into the 24-bit voltage, so ``vth = vth_mant << 6``.
"""
from __future__ import annotations

# ---------------------------------------------------------------- input
DEFAULT_INPUT_BITS = 4      # training and quantize_intensity: pixels -> 0..15
FALLBACK_INPUT_BITS = 8     # compiling a file that has no /qblif/inputBits (NIR, lava-dl files)
