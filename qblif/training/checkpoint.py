"""Training checkpoints that cannot carry code (issue 21, docs/hardening.md).

A checkpoint is a ``torch.save`` of tensors and plain containers only (dict, list, tuple,
str, int, float, bool, None): the model and optimizer state dicts, the data-order
generator's state (a uint8 tensor), every rank's RNG states (torch: uint8 tensors; numpy's
MT19937 keys: an int64 tensor; python's: a tuple of ints), the config as a dict of plain
values, the schedule position and the history. It is read with
``torch.load(weights_only=True)``, whose unpickler builds nothing else: a pickle that would
call a function (``os.system``, ``__reduce__``) is refused before anything runs.

Format: ``{"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, ...}``. An older
(version 1, a full pickle), foreign or malformed file is one :class:`CheckpointError`
(exit code 2) naming the path. Checkpoints are written atomically (a temporary file, then
``os.replace``), as models are.
"""
from __future__ import annotations

import os
import pickle
from collections import OrderedDict

import numpy as np
import torch

from qblif.core.errors import CheckpointError
from qblif.core.fileio import write_together

CHECKPOINT_FORMAT = "qblif-training-checkpoint"
CHECKPOINT_VERSION = 2
#: top-level key -> the types its value may have
SCHEMA = {"config": (dict,), "world_size": (int,), "model": (dict,), "optimizer": (dict,),
          "generator": (torch.Tensor,), "rng": (list,), "state": (dict,),
          "position": (dict, type(None))}
#: what torch.load raises on a bad file: the restricted unpickler's refusal ("Unsupported
#: global ...") is an UnpicklingError; a damaged zip a RuntimeError; a truncated pickle EOFError
LOAD_ERRORS = (pickle.UnpicklingError, OSError, RuntimeError, ValueError, TypeError, EOFError,
               KeyError, AttributeError, ImportError, IndexError, MemoryError, UnicodeError)
STATE_KEYS = ("epoch", "planned", "history", "best_val", "best_state", "epoch_times",
              "elapsed", "resumed")


def plain(obj):
    """``obj`` with numpy arrays as tensors and numpy scalars as Python numbers, recursively
    through dicts (an ``OrderedDict`` stays one), lists and tuples."""
    if isinstance(obj, np.ndarray):
        return torch.from_numpy(obj.astype(np.int64) if obj.dtype.kind == "u" else obj.copy())
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, dict):
        return type(obj)((k, plain(v)) for k, v in obj.items()) if isinstance(obj, OrderedDict) \
            else {k: plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(plain(v) for v in obj)
    return obj


def save_checkpoint(path: str, payload: dict) -> None:
    """Write ``payload`` (the keys of :data:`SCHEMA`) as a checkpoint to ``path``, atomically."""
    data = {"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, **plain(payload)}
    write_together([(path, lambda tmp: torch.save(data, tmp))])


def load_checkpoint(path: str) -> dict:
    """The checkpoint at ``path``, read with ``weights_only=True``; anything else (no file,
    not a torch file, a pickle of other objects, another format or version, a missing or
    mistyped key) raises :class:`CheckpointError` naming ``path``."""
    if not os.path.isfile(path):
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        ck = torch.load(path, map_location="cpu", weights_only=True)
    except LOAD_ERRORS as exc:
        raise CheckpointError(f"cannot read checkpoint {path}: {_reason(exc)}") from None
    check_checkpoint(ck, path)
    return ck


def _reason(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    if "Weights only load failed" in text or "Unsupported" in text:
        return "it holds objects other than tensors and plain values (refused: a checkpoint " \
               "must not carry code)"
    return f"{type(exc).__name__}: {text[:160]}"


def check_checkpoint(ck, path: str) -> None:
    """Refuse a loaded object that is not a version-:data:`CHECKPOINT_VERSION` checkpoint."""
    if not isinstance(ck, dict) or ck.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path} is not a qblif training checkpoint")
    if not isinstance(ck.get("version"), int) or ck["version"] != CHECKPOINT_VERSION:
        raise CheckpointError(f"{path}: checkpoint version {ck.get('version')!r} is not "
                              f"supported (this qblif reads version {CHECKPOINT_VERSION})")
    for key, types in SCHEMA.items():
        if not isinstance(ck.get(key, ...), types):
            raise CheckpointError(f"{path}: checkpoint key {key!r} is missing or of the wrong "
                                  f"type ({type(ck.get(key)).__name__})")
    missing = [k for k in STATE_KEYS if k not in ck["state"]]
    if missing or not ck["rng"] or not all(isinstance(r, dict) for r in ck["rng"]):
        raise CheckpointError(f"{path}: checkpoint state is incomplete "
                              f"({', '.join(missing) or 'rng'})")
