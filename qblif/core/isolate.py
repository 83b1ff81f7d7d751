"""Run a reader of an untrusted file in a forked child with a time limit.

A damaged HDF5 file can make HDF5's C library loop inside a dataset read; while it loops no
Python signal handler runs, so the process can only be killed (docs/hardening.md, the fuzz
soak's case ``('nir', 'flip', 392, 1522195650)``). :func:`read_isolated` runs the read in a
forked child and hands its result back through a pipe; past the limit the child is killed
and the caller gets one error naming the file. An exception in the child comes back as its
type name and first line. Nothing is left behind: the child is killed and reaped on every
path, Ctrl-C included.
"""
from __future__ import annotations

import multiprocessing
from typing import Callable

from qblif.core.constants import READ_TIMEOUT_S


class ReadFailed(Exception):
    """The reader raised in the child: ``kind`` (the exception's type name) and ``text``
    (its first line)."""

    def __init__(self, kind: str, text: str):
        super().__init__(f"{kind}: {text}" if text else kind)
        self.kind, self.text = kind, text


class ReadTimeout(Exception):
    """The reader did not finish within the limit (the child was killed)."""


def _child(conn, fn, args) -> None:
    try:
        result = ("ok", fn(*args))
    except BaseException as exc:        # noqa: BLE001 (reported to the parent, one line)
        text = str(exc).splitlines()[0] if str(exc) else ""
        result = ("err", type(exc).__name__, text)
    try:
        conn.send(result)
    except Exception as exc:            # an unpicklable result: say so instead
        conn.send(("err", type(exc).__name__, str(exc).splitlines()[0] if str(exc) else ""))
    conn.close()


def read_isolated(fn: Callable, *args, timeout: float = READ_TIMEOUT_S):
    """``fn(*args)`` computed in a forked child; its (picklable) result. Raises
    :class:`ReadTimeout` past ``timeout`` seconds, :class:`ReadFailed` if ``fn`` raised."""
    ctx = multiprocessing.get_context("fork")
    recv, send = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(send, fn, args), daemon=True,
                       name="qblif-read")
    proc.start()
    send.close()
    try:
        if not recv.poll(timeout):
            raise ReadTimeout(f"not read within {timeout:g} s")
        try:
            msg = recv.recv()
        except EOFError:                 # the child died without an answer (a crash)
            raise ReadFailed("crash", f"the reader died (exit code {proc.exitcode})") from None
    finally:
        if proc.is_alive():
            proc.kill()
        proc.join()
        recv.close()
    if msg[0] == "err":
        raise ReadFailed(msg[1], msg[2])
    return msg[1]
