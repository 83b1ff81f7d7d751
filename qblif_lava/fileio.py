"""Atomic file writes: a temporary file in the target's directory, then ``os.replace``,
so a crash or an error never leaves a half-written file or destroys the old one."""
from __future__ import annotations

import os
import tempfile


def atomic_write_text(path: str, text: str) -> None:
    """Write ``text`` to ``path`` atomically (the directory must exist)."""
    atomic_write_bytes(path, text.encode())


def atomic_write_bytes(path: str, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (the directory must exist)."""
    d = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=os.path.basename(path), dir=d)
    umask = os.umask(0)
    os.umask(umask)
    try:
        os.chmod(tmp, 0o666 & ~umask)            # mkstemp's 0600 is not what a user expects
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def writable_problem(path: str) -> str | None:
    """Why ``path`` cannot be written as a new or replaced file, or ``None`` if it can:
    it is a directory, its directory is missing, or the directory refuses a new file."""
    d = os.path.dirname(os.path.abspath(path)) or "."
    if os.path.isdir(path):
        return "it is a directory"
    if not os.path.isdir(d):
        return f"directory {d} does not exist"
    try:
        fd, tmp = tempfile.mkstemp(prefix=".qblif-check-", dir=d)
        os.close(fd)
        os.remove(tmp)
    except OSError as exc:
        return str(exc.strerror or exc)
    return None
