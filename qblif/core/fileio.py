"""Atomic file writes: a temporary file in the target's directory, then ``os.replace``,
so a crash or an error never leaves a half-written file or destroys the old one.

:func:`write_together` writes several files as a unit (a model and its card): every file
is first written under a temporary name beside its target; only when all are complete
are they renamed into place. A failed write (a full or read-only disk) removes the
temporary files, leaves every target as it was, and raises :class:`WriteError`: one line
naming the path and the reason.
"""
from __future__ import annotations

import contextlib
import errno as _errno
import os
import tempfile
from typing import Callable, Iterable

from qblif.core.errors import QblifError


class WriteError(QblifError, OSError):
    """A file could not be written: one line naming the path and the reason. Also an
    ``OSError`` (``errno``, ``filename``), for callers that catch those."""

    def __init__(self, path: str, reason: str, errno: int | None = None):
        OSError.__init__(self, errno, reason, path)
        self.path = path
        self.message = f"cannot write {path}: {reason}"

    def __str__(self) -> str:
        return self.message


def _reason(exc: BaseException) -> tuple:
    """``(one-line reason, errno)`` of an ``OSError`` (h5py's carry a multi-line text)."""
    code = getattr(exc, "errno", None)
    if code is None:                      # h5py: "... errno = 28, error message = '...'"
        text = str(exc)
        for c in (_errno.ENOSPC, _errno.EDQUOT, _errno.EROFS, _errno.EACCES, _errno.EIO):
            if f"errno = {c}," in text:
                code = c
    if code:
        return os.strerror(code), code
    return " ".join(str(exc).split())[:200], None


def _temp_beside(path: str) -> str:
    d = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=d)
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)            # mkstemp's 0600 is not what a user expects
    return tmp


def write_together(items: Iterable[tuple[str, Callable[[str], None]]]) -> None:
    """Write the files ``items`` = ``[(path, write), ...]`` as a unit: ``write(tmp)`` writes
    the content of ``path`` to the temporary file ``tmp`` (beside ``path``); all are renamed
    into place only after every write succeeded. An ``OSError`` (or h5py's
    ``RuntimeError``) while writing removes every temporary file and raises
    :class:`WriteError` naming the path; the targets are untouched."""
    staged = []
    try:
        for path, write in items:
            try:
                tmp = _temp_beside(path)
                staged.append((tmp, path))
                write(tmp)
            except (OSError, RuntimeError) as exc:
                raise WriteError(path, *_reason(exc)) from None
        for i, (tmp, path) in enumerate(staged):
            try:
                os.replace(tmp, path)
            except OSError as exc:
                done = [p for _, p in staged[:i]]
                raise WriteError(path, _reason(exc)[0] + (
                    f" (already replaced: {', '.join(done)})" if done else ""),
                    getattr(exc, "errno", None)) from None
    finally:
        for tmp, _ in staged:
            if os.path.lexists(tmp):
                try:
                    os.remove(tmp)
                except OSError:
                    pass


def atomic_write_text(path: str, text: str) -> None:
    """Write ``text`` to ``path`` atomically (the directory must exist); a failure raises
    :class:`WriteError` naming ``path``."""
    def write(tmp):
        with open(tmp, "w") as f:
            f.write(text)
    write_together([(path, write)])


def atomic_write_bytes(path: str, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (as :func:`atomic_write_text`)."""
    def write(tmp):
        with open(tmp, "wb") as f:
            f.write(data)
    write_together([(path, write)])


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


class BusyError(QblifError):
    """Another process holds the lock of an output (``qblif train --out``, ``evaluate
    --update-card``): one line naming the output; exit code 1."""


def lock_path(path: str) -> str:
    """The lock file of output ``path``: ``.NAME.lock`` beside it."""
    d, name = os.path.split(os.path.abspath(path))
    return os.path.join(d, f".{name}.lock")


@contextlib.contextmanager
def exclusive(path: str, what: str = "writing"):
    """Hold the lock of output ``path`` (``fcntl.flock`` on :func:`lock_path`) for the body;
    a second process refuses at once with :class:`BusyError` instead of mixing its files
    with ours. The lock file is removed on release; a holder that dies releases the lock
    (the kernel drops it) and the next one reuses the file."""
    lock = lock_path(path)
    fd = _acquire(lock, path, what)
    try:
        yield lock
    finally:
        with contextlib.suppress(OSError):
            os.unlink(lock)
        os.close(fd)


def _acquire(lock: str, path: str, what: str) -> int:
    """An fd of ``lock``, flocked; retried when the file was unlinked by its last holder
    between our open and our lock (then we would hold a lock nobody else sees)."""
    import fcntl
    while True:
        try:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise WriteError(lock, *_reason(exc)) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise BusyError(f"another qblif process is {what} {path} (it holds {lock}); "
                            "try again when it is done") from None
        try:
            same = os.stat(lock).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            return fd
        os.close(fd)
