"""Reading an untrusted ``.npy`` file (``qblif run --input``) with bounded memory (issue 21).

:func:`load_npy` reads the header first (``np.lib.format``: the 1.0 and 2.0 formats), and
refuses before any array is allocated: object dtypes (they would need pickle), non-numeric
dtypes, negative or absurd shapes, more than ``MAX_ELEMENTS`` elements, and a header whose
shape x itemsize is not the number of bytes that follow it (a 1 KB file that claims
(200,000,000, 64) int64). Every refusal is one :class:`InputFileError` line naming the file.
"""
from __future__ import annotations

import os

import numpy as np

from qblif.core.constants import MAX_ELEMENTS
from qblif.core.errors import InputFileError

HEADER_READERS = {(1, 0): np.lib.format.read_array_header_1_0,
                  (2, 0): np.lib.format.read_array_header_2_0}
NUMERIC_KINDS = "biuf"       # bool, signed, unsigned, float


def npy_header(path: str) -> tuple:
    """``(shape, fortran_order, dtype, data_offset)`` of the ``.npy`` file ``path``, checked
    against the file's size and the limits; nothing but the header is read."""
    try:
        with open(path, "rb") as f:
            version = np.lib.format.read_magic(f)
            if version not in HEADER_READERS:
                raise InputFileError(f"{path}: .npy format version {version} is not supported")
            shape, fortran, dtype = HEADER_READERS[version](f)
            offset = f.tell()
    except FileNotFoundError:
        raise InputFileError(f"{path}: no such file") from None
    except (ValueError, OSError, EOFError) as exc:
        raise InputFileError(f"{path}: not a .npy array ({' '.join(str(exc).split())[:160]})") \
            from None
    _check(path, shape, dtype, os.path.getsize(path) - offset)
    return shape, fortran, dtype, offset


def _check(path: str, shape: tuple, dtype: np.dtype, data_bytes: int) -> None:
    if dtype.hasobject or dtype.kind not in NUMERIC_KINDS or dtype.fields is not None:
        raise InputFileError(f"{path}: dtype {dtype} is not a number type (bool, int, float)")
    if any(int(s) < 0 for s in shape):
        raise InputFileError(f"{path}: header declares the negative shape {shape}")
    n = 1
    for s in shape:
        n *= int(s)
    if n > MAX_ELEMENTS:
        raise InputFileError(f"{path}: header declares {shape} {dtype} ({n:,} elements), more "
                             f"than the limit of {MAX_ELEMENTS:,}")
    if n * dtype.itemsize != data_bytes:
        raise InputFileError(f"{path}: header declares {shape} {dtype} ({n * dtype.itemsize:,} "
                             f"bytes) but {data_bytes:,} bytes follow it")


def load_npy(path: str) -> np.ndarray:
    """The array of the ``.npy`` file ``path``, read only after :func:`npy_header` accepted
    its header (so memory is bounded by the file's real size and ``MAX_ELEMENTS``)."""
    shape, fortran, dtype, offset = npy_header(path)
    n = int(np.prod(shape, dtype=np.int64))
    with open(path, "rb") as f:
        f.seek(offset)
        data = np.fromfile(f, dtype=dtype, count=n)
    if data.size != n:
        raise InputFileError(f"{path}: truncated while reading ({data.size:,} of {n:,} elements)")
    return data.reshape(shape, order="F" if fortran else "C")
