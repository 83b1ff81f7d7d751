"""Checks shared by every reader of a NetX HDF5 file (``docs/netx_format.md``).

The compiler (``qblif.ir.from_netx`` + the ``validate`` pass), :func:`qblif.training.slayer.load_network`
(and through it ``qblif evaluate`` and ``qblif.verify``) read files with these functions, so
a file one of them refuses the others refuse too, with the same one-line message naming layer
and key, as :class:`ModelFileError` (exit code 2 in the CLI; the compiler raises its subclass
``CompileError``):

- decoding: :func:`read_array` (numbers only, finite, integer-valued where required, at most
  :data:`MAX_ELEMENTS`), :func:`read_int`, :func:`read_string`, :func:`read_pair`,
  :func:`subgroup`;
- ranges (spec section 1, :mod:`qblif.core.params`): :func:`check_neuron` (iDecay, vDecay,
  maxBurst, resetMode of QBLIF/CUBA groups), :func:`check_meta` (``/qblif/inputBits``,
  ``/qblif/timesteps``, ``/qblif/inputShape``).

No torch, no Lava here (h5py is imported on use).
"""
from __future__ import annotations

import numpy as np

from qblif.core import params as P
from qblif.core.constants import MAX_ELEMENTS
from qblif.core.errors import ModelFileError, QblifError  # noqa: F401 (ModelFileError: the readers raise it)
from qblif.core.hdf5_limits import check_hdf5


# ------------------------------------------------------------------ decoding
def open_file(path):
    """Open the NetX HDF5 file ``path`` for reading (an ``h5py.File``); a missing or
    unreadable file is one :class:`ModelFileError` naming the path, and so is a file that
    declares a dataset past the size limits (:func:`check_hdf5`, before any read)."""
    import h5py
    check_hdf5(path)
    try:
        return h5py.File(path, "r")
    except FileNotFoundError:
        raise ModelFileError(f"{path}: no such file") from None
    except Exception as exc:
        raise ModelFileError(f"{path}: not a readable HDF5 file ({type(exc).__name__})") from None


def subgroup(group, key, layer):
    """``group[key]``, which must be an HDF5 group."""
    import h5py
    try:
        obj = group[key]
    except KeyError:
        raise ModelFileError("missing", layer, key) from None
    except Exception as exc:
        raise ModelFileError(f"unreadable ({type(exc).__name__})", layer, key) from None
    if not isinstance(obj, h5py.Group):
        raise ModelFileError("expected a group", layer, key)
    return obj


def dataset(group, key, layer):
    """The value of the dataset ``group[key]`` (refused above :data:`MAX_ELEMENTS`)."""
    import h5py
    try:
        obj = group[key]
    except KeyError:
        raise ModelFileError("missing", layer, key) from None
    except Exception as exc:  # h5py raises many types on corrupt files
        raise ModelFileError(f"unreadable ({type(exc).__name__})", layer, key) from None
    if not isinstance(obj, h5py.Dataset):
        raise ModelFileError("expected a dataset, found a group", layer, key)
    try:
        size = obj.size
    except Exception as exc:
        raise ModelFileError(f"unreadable ({type(exc).__name__})", layer, key) from None
    if size is None or size > MAX_ELEMENTS:
        raise ModelFileError(f"dataset of {size} elements is too large (limit {MAX_ELEMENTS})",
                             layer, key)
    try:
        return obj[()]
    except Exception as exc:
        raise ModelFileError(f"unreadable ({type(exc).__name__})", layer, key) from None


def read_string(group, key, layer) -> str:
    """A string dataset: bytes/str, scalar or shape (1,) (lava-dl writes ``(1,) S10``)."""
    value = dataset(group, key, layer)
    if isinstance(value, np.ndarray):
        if value.size != 1:
            raise ModelFileError(f"expected one string, found shape {value.shape}", layer, key)
        value = value.reshape(-1)[0]
    if isinstance(value, bytes):
        try:
            value = value.decode("ascii")
        except UnicodeDecodeError:
            raise ModelFileError("not an ASCII string", layer, key) from None
    if not isinstance(value, str):
        raise ModelFileError(f"expected a string, found {type(value).__name__}", layer, key)
    return value.strip("\x00 ")


def read_array(group, key, layer, integer=True) -> np.ndarray:
    """A numeric dataset as an array: finite; with ``integer`` integer-valued (int64),
    else float64."""
    arr = np.asarray(dataset(group, key, layer))
    if arr.dtype.kind not in "biuf":
        raise ModelFileError(f"expected numbers, found dtype {arr.dtype}", layer, key)
    if arr.size == 0:
        raise ModelFileError("is empty", layer, key)
    if arr.dtype.kind == "f":
        if not np.all(np.isfinite(arr)):
            raise ModelFileError("holds NaN or infinity", layer, key)
        if integer:
            if np.any(arr != np.round(arr)):
                raise ModelFileError("holds non-integer values (not representable)", layer, key)
            if np.any(np.abs(arr) > 2 ** 40):
                raise ModelFileError("holds values out of range", layer, key)
    return arr.astype(np.int64) if integer else arr.astype(np.float64)


def read_int(group, key, layer, default=None) -> int:
    """A scalar integer dataset (``default`` when absent and given)."""
    if default is not None and key not in group:
        return default
    arr = read_array(group, key, layer)
    if arr.size != 1:
        raise ModelFileError(f"expected a scalar, found shape {arr.shape}", layer, key)
    return int(arr.reshape(-1)[0])


def read_pair(group, key, layer, default) -> tuple:
    """An (H, W) pair (lava-dl writes 2-element arrays; a scalar means both)."""
    if key not in group:
        return default
    arr = read_array(group, key, layer).reshape(-1)
    if arr.size == 1:
        return (int(arr[0]), int(arr[0]))
    if arr.size != 2:
        raise ModelFileError(f"expected 1 or 2 values, found {arr.size}", layer, key)
    return (int(arr[0]), int(arr[1]))


# ------------------------------------------------------------------ ranges
def _ranged(layer, key, name, value, lo, hi, shape=None):
    try:
        return P.check_int_range(name, value, lo, hi, shape=shape)
    except ValueError as exc:
        raise ModelFileError(str(exc), layer, key) from None


def check_neuron(layer, kind: str, i_decay: int, v_decay: int, max_burst=None,
                 reset_mode=None, ref_delay=1, message_bits=None) -> None:
    """Ranges of a QBLIF or CUBA neuron group (spec section 1): ``iDecay`` in 1..4096 (NetX
    stores du + 1), ``vDecay`` in 0..4095, ``refDelay`` 0 or 1 (no refractory period is
    modelled); QBLIF also ``maxBurst``, ``resetMode`` and ``messageBits`` (absent, or
    ``bit_length(maxBurst)``: :func:`qblif.core.params.message_bits`)."""
    _ranged(layer, "neuron/iDecay", "iDecay", i_decay, 1, P.DECAY_RANGE[1] + 1)
    _ranged(layer, "neuron/vDecay", "vDecay", v_decay, *P.DECAY_RANGE)
    if ref_delay not in (0, 1):
        raise ModelFileError(f"refDelay={ref_delay} is unsupported (refractory periods are "
                             "not modelled; expected 0 or 1)", layer, "neuron/refDelay")
    if kind != "QBLIF":
        return
    _ranged(layer, "neuron/maxBurst", "maxBurst", max_burst, *P.MAX_BURST_RANGE)
    try:
        P.check_reset_mode(reset_mode)
    except ValueError as exc:
        raise ModelFileError(str(exc), layer, "neuron/resetMode") from None
    want = P.message_bits(max_burst)
    if message_bits is not None and message_bits != want:
        raise ModelFileError(f"messageBits={message_bits} is inconsistent with "
                             f"maxBurst={max_burst} (expected {want})", layer, "neuron/messageBits")


def check_weight(layer, weight, key: str = "weight") -> None:
    """Synaptic weights (integer mantissas, 2^6 = one unit of the float weight): in
    :data:`qblif.core.params.WEIGHT_RANGE` (8-bit Loihi synapses; NetX clips outside)."""
    w = np.asarray(weight)
    lo, hi = P.WEIGHT_RANGE
    if w.size and (w.min() < lo or w.max() > hi):
        raise ModelFileError(f"weights in [{w.min()}, {w.max()}] are not representable in "
                             f"8 bits (allowed [{lo}, {hi}])", layer, key)


def check_meta(input_bits=None, timesteps=None, input_shape=None) -> None:
    """``/qblif`` metadata ranges: inputBits :data:`qblif.core.params.INPUT_BITS_RANGE`,
    timesteps :data:`qblif.core.params.TIMESTEPS_RANGE`, inputShape ``(N,)`` or ``(C, H, W)``
    of positive ints. None: absent, not checked."""
    if input_bits is not None and not P.INPUT_BITS_RANGE[0] <= input_bits <= P.INPUT_BITS_RANGE[1]:
        raise ModelFileError(f"inputBits={input_bits} is out of range "
                             f"{list(P.INPUT_BITS_RANGE)}", "qblif", "inputBits")
    if timesteps is not None and not P.TIMESTEPS_RANGE[0] <= timesteps <= P.TIMESTEPS_RANGE[1]:
        raise ModelFileError(f"timesteps={timesteps} is out of range "
                             f"{list(P.TIMESTEPS_RANGE)}", "qblif", "timesteps")
    if input_shape is not None and (len(input_shape) not in (1, 3)
                                    or any(s <= 0 for s in input_shape)
                                    or np.prod(input_shape, dtype=float) > MAX_ELEMENTS):
        raise ModelFileError(f"invalid input shape {tuple(input_shape)} (expected (N,) or "
                             "(C, H, W) of positive ints)", "qblif", "inputShape")
