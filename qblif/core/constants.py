"""Every bit width, shift and limit of the project, once (spec: ../shared/QBLIF_SPEC.md).

Units: a *mantissa* is an integer in the chip's fixed point; the 2^6 shift (``ACT_SHIFT``)
scales threshold and bias mantissas into the 24-bit voltage, so ``vth = vth_mant << 6``.
"""
from __future__ import annotations

# ---------------------------------------------------------------- input
DEFAULT_INPUT_BITS = 4      # training and quantize_intensity: pixels -> 0..15
FALLBACK_INPUT_BITS = 8     # compiling a file that has no /qblif/inputBits (NIR, lava-dl files)

# ---------------------------------------------------------------- untrusted files (issue 21)
MAX_ELEMENTS = 2 ** 26          # elements of one HDF5 dataset (NetX, NIR) or --input array
MAX_FILE_ELEMENTS = 2 ** 28     # elements of all the datasets of one HDF5 file together
MAX_HDF5_OBJECTS = 100_000      # groups + datasets + attributes walked in one HDF5 file
MAX_NIR_DEPTH = 32              # nesting of NIR subgraphs (NIRGraph nodes inside NIRGraph)
MAX_HDF5_DEPTH = 2 * MAX_NIR_DEPTH + 8   # group nesting (each NIR level is nodes/<name>/)
MAX_CARD_BYTES = 1_000_000      # a model card NAME.json (qblif evaluate reads it)
