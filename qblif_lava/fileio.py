"""Atomic file writes: a temporary file in the target's directory, then ``os.replace``,
so a crash or an error never leaves a half-written file or destroys the old one."""
from __future__ import annotations

import os
import tempfile


def atomic_write_text(path: str, text: str) -> None:
    """Write ``text`` to ``path`` atomically (the directory must exist)."""
    _atomic_write(path, text, "w")


def atomic_write_bytes(path: str, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (the directory must exist)."""
    _atomic_write(path, data, "wb")


def _atomic_write(path: str, payload, mode: str) -> None:
    d = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=os.path.basename(path), dir=d)
    umask = os.umask(0)
    os.umask(umask)
    try:
        os.chmod(tmp, 0o666 & ~umask)            # mkstemp's 0600 is not what a user expects
        with os.fdopen(fd, mode) as f:
            f.write(payload)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
