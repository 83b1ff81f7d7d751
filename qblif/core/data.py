"""Datasets for training and the demo (numpy only; nothing is ever downloaded).

``load_dataset(name, split, limit=None) -> (images, labels)`` with ``images`` float32
in [0, 1] of shape ``(N, C, H, W)`` and ``labels`` int64 of shape ``(N,)``.

- ``digits``: scikit-learn's bundled ``load_digits`` (1797 images, 1x8x8, values 0..16
  divided by 16). A fixed permutation (``RandomState(0)``) is split into train (first
  72%), val (next 8%) and test (last 20%, 360 images).
- ``fashion-mnist``: the Debian package ``dataset-fashion-mnist`` (gzipped IDX files in
  ``/usr/share/datasets/fashion-mnist``; override the directory with the ``root``
  argument or the ``QBLIF_FMNIST_DIR`` environment variable). ``train`` is the first
  54000 images of the training file, ``val`` its last 6000, ``test`` the 10000 of t10k.

Splits: ``train``, ``val``, ``test``. ``limit`` keeps the first ``limit`` samples of the
split. Missing or malformed files raise :class:`qblif.core.errors.DataError` naming the
file (and the package to install).
"""
from __future__ import annotations

import gzip
import os
import zlib

import numpy as np

from qblif.core.errors import DataError

DATASETS = ("digits", "fashion-mnist")
SPLITS = ("train", "val", "test")
NUM_CLASSES = 10
FMNIST_DIR = "/usr/share/datasets/fashion-mnist"
FMNIST_ENV = "QBLIF_FMNIST_DIR"
FMNIST_VAL = 6000
FMNIST_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
IDX_IMAGES_MAGIC = 0x00000803   # unsigned byte, 3 dimensions
IDX_LABELS_MAGIC = 0x00000801   # unsigned byte, 1 dimension

_cache: dict = {}


def input_shape(name: str) -> tuple:
    """Shape ``(C, H, W)`` of one image of dataset ``name``."""
    _check_name(name)
    return (1, 8, 8) if name == "digits" else (1, 28, 28)


def _check_name(name):
    if name not in DATASETS:
        raise DataError(f"unknown dataset {name!r}: choose one of {', '.join(DATASETS)}")


def load_dataset(name: str, split: str, limit: int | None = None, root: str | None = None):
    """Return ``(images float32 (N, C, H, W) in [0, 1], labels int64 (N,))``.

    ``root`` (Fashion-MNIST only) overrides the data directory; default
    ``$QBLIF_FMNIST_DIR`` or ``/usr/share/datasets/fashion-mnist``.
    """
    x_u8, scale, y = load_dataset_u8(name, split, limit, root)
    images = (x_u8.astype(np.float32) / np.float32(scale))[:, None, :, :]
    return images, y.astype(np.int64).copy()


def load_dataset_u8(name: str, split: str, limit: int | None = None, root: str | None = None):
    """The stored pixels before :func:`load_dataset` scales them: ``(uint8 (N, H, W), scale,
    labels (N,))``; ``load_dataset``'s images are ``float32(x) / float32(scale)``."""
    _check_name(name)
    if split not in SPLITS:
        raise DataError(f"unknown split {split!r} of {name}: choose one of {', '.join(SPLITS)}")
    if limit is not None and int(limit) < 1:
        raise DataError(f"limit={limit!r} is invalid: expected a positive number of samples")
    if name == "digits":
        x_u8, y = _digits(split)
        scale = 16.0
    else:
        x_u8, y = _fmnist(split, root)
        scale = 255.0
    if limit is not None:
        x_u8, y = x_u8[:int(limit)], y[:int(limit)]
    return x_u8, scale, y


def _digits(split):
    if "digits" not in _cache:
        try:
            from sklearn.datasets import load_digits
        except ImportError as exc:  # pragma: no cover - sklearn is a dependency
            raise DataError("the digits dataset needs scikit-learn: pip install scikit-learn") from exc
        d = load_digits()
        x = np.asarray(d.images, dtype=np.uint8)            # (1797, 8, 8), values 0..16
        y = np.asarray(d.target, dtype=np.int64)
        perm = np.random.RandomState(0).permutation(len(y))
        _cache["digits"] = (x[perm], y[perm])
    x, y = _cache["digits"]
    n = len(y)
    n_test = int(round(0.2 * n))
    n_val = int(round(0.08 * n))
    n_train = n - n_test - n_val
    sl = {"train": slice(0, n_train), "val": slice(n_train, n_train + n_val),
          "test": slice(n_train + n_val, n)}[split]
    return x[sl], y[sl]


def fmnist_dir(root: str | None = None) -> str:
    """The Fashion-MNIST directory in use (argument, ``$QBLIF_FMNIST_DIR``, default)."""
    return root or os.environ.get(FMNIST_ENV) or FMNIST_DIR


def _fmnist(split, root):
    d = fmnist_dir(root)
    part = "test" if split == "test" else "train"
    img_name, lab_name = FMNIST_FILES[part]
    img_path, lab_path = os.path.join(d, img_name), os.path.join(d, lab_name)
    key = ("fmnist", os.path.abspath(img_path), os.path.abspath(lab_path), _stamp(img_path), _stamp(lab_path))
    if key not in _cache:
        x = read_idx(img_path, IDX_IMAGES_MAGIC, 3)
        y = read_idx(lab_path, IDX_LABELS_MAGIC, 1)
        if len(x) != len(y):
            raise DataError(f"malformed Fashion-MNIST files: {img_path} has {len(x)} images "
                            f"but {lab_path} has {len(y)} labels")
        if x.shape[1:] != (28, 28):
            raise DataError(f"malformed Fashion-MNIST file {img_path}: images are "
                            f"{x.shape[1]}x{x.shape[2]}, expected 28x28")
        if len(y) and int(y.max()) >= NUM_CLASSES:
            raise DataError(f"malformed Fashion-MNIST file {lab_path}: label {int(y.max())} "
                            f"is not in 0..{NUM_CLASSES - 1}")
        _cache[key] = (x, y)
    x, y = _cache[key]
    if part == "test":
        return x, y
    if len(y) <= FMNIST_VAL:
        raise DataError(f"malformed Fashion-MNIST file {img_path}: only {len(y)} training images, "
                        f"need more than {FMNIST_VAL} for the validation split")
    n_train = len(y) - FMNIST_VAL
    return (x[:n_train], y[:n_train]) if split == "train" else (x[n_train:], y[n_train:])


def _stamp(path):
    try:
        st = os.stat(path)
        return (st.st_mtime_ns, st.st_size)
    except OSError:
        return None


def read_idx(path: str, magic: int, ndim: int) -> np.ndarray:
    """Parse a gzipped IDX file of unsigned bytes: returns uint8 of shape ``dims``.

    Checks the magic number (``0x0000080<ndim>`` for ubyte data) and that the payload
    holds exactly ``prod(dims)`` bytes; raises :class:`DataError` naming ``path``.
    """
    if not os.path.isfile(path):
        raise DataError(f"Fashion-MNIST file {path} not found: install it with "
                        f"'apt-get install dataset-fashion-mnist' (or set {FMNIST_ENV} "
                        f"to a directory holding the gzipped IDX files)")
    try:
        with gzip.open(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"malformed Fashion-MNIST file {path}: not a readable gzip file ({exc})") from None
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"malformed IDX file {path}: {len(raw)} bytes, shorter than its header")
    got = int.from_bytes(raw[:4], "big")
    if got != magic:
        raise DataError(f"malformed IDX file {path}: magic number 0x{got:08x}, expected 0x{magic:08x}")
    dims = tuple(int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
    size = int(np.prod(dims, dtype=np.int64))
    if len(raw) - header != size:
        raise DataError(f"malformed IDX file {path}: header says {dims} ({size} bytes) "
                        f"but the payload has {len(raw) - header} bytes")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)
