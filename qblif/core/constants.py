"""Every bit width, shift and limit of the project, once (spec: ../shared/QBLIF_SPEC.md).

Units: a *mantissa* is an integer in the chip's fixed point; the 2^6 shift (``ACT_SHIFT``)
scales threshold and bias mantissas into the 24-bit voltage, so ``vth = vth_mant << 6``.
"""
from __future__ import annotations

# ---------------------------------------------------------------- input
DEFAULT_INPUT_BITS = 4      # training and quantize_intensity: pixels -> 0..15
FALLBACK_INPUT_BITS = 8     # compiling a file that has no /qblif/inputBits (NIR, lava-dl files)

# ---------------------------------------------------------------- neuron state (spec section 1)
UV_BITS = 24                # u and v are 24-bit signed
DECAY_SHIFT = 12            # decays du, dv are fractions of 2^12 (12-bit, 0..4095)
DECAY_UNITY = 2 ** DECAY_SHIFT
STATE_SHIFT = 6             # 2^6: weight units -> state units (a << 6, theta = vth << 6);
                            # also SLAYER's weight scale (w_float = w_int / 64)

# ---------------------------------------------------------------- events (spec section 4)
GRADED_BURST_BITS = 8       # payload of a graded burst spike: a count 0..2^8 - 1 (K <= 255)

# ---------------------------------------------------------------- stock NetX's fixed exponents
NETX_BIAS_EXP = STATE_SHIFT     # bias_exp of a CUBA neuron driven by its bias (get_neuron_params)
NETX_SDNN_EXP = STATE_SHIFT     # SigmaDelta spike_exp = state_exp (netx.hdf5.Network)

# ---------------------------------------------------------------- exact float arithmetic
F32_EXACT = 2 ** 24         # float32 holds every integer of magnitude <= 2^24 exactly
F64_EXACT = 2 ** 53         # float64: 2^53

# ---------------------------------------------------------------- choices (library and CLI)
ENCODINGS = ("graded", "binary")        # burst encodings (spec section 4)
ENGINES = ("lava", "exact")             # what runs a compiled network
RUN_MODELS = ("fast", "stock")          # Lava process models: ours (bit-exact) or Lava's own
RUN_RESETS = ("sample", "none", "netx")  # a run's reset schedule (the neuron's own reset
                                         # after a burst is reference.RESET_MODES)

# ---------------------------------------------------------------- untrusted files (issue 21)
MAX_ELEMENTS = 2 ** 26          # elements of one HDF5 dataset (NetX, NIR) or --input array
MAX_FILE_ELEMENTS = 2 ** 28     # elements of all the datasets of one HDF5 file together
MAX_HDF5_OBJECTS = 100_000      # groups + datasets + attributes walked in one HDF5 file
MAX_NIR_DEPTH = 32              # nesting of NIR subgraphs (NIRGraph nodes inside NIRGraph)
MAX_HDF5_DEPTH = 2 * MAX_NIR_DEPTH + 8   # group nesting (each NIR level is nodes/<name>/)
MAX_CARD_BYTES = 1_000_000      # a model card NAME.json (qblif evaluate reads it)
READ_TIMEOUT_S = 60.0          # reading one untrusted HDF5 file (a damaged one can hang HDF5)
