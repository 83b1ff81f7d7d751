"""Ctrl-C, SIGTERM and SIGHUP as exceptions, held back while a module is being imported.

The ``qblif`` CLI (and, during a run, :mod:`qblif.lava.session`) turns SIGINT into
``KeyboardInterrupt`` and SIGTERM / SIGHUP into :class:`Terminated`, so that every
interruption unwinds the same way and ends with one line and exit code 128 + signal.

An exception raised *inside* an import is not reliable: third-party module initialisation
code swallows it (a Cython module's init: the command then runs on as if no signal came),
prints it (a traceback), or turns it into another error (numpy: ImportError). And when it
leaves code run by ``exec``/``eval`` of a string (``dataclasses``, ``namedtuple``,
``multiprocessing.managers`` build their methods that way at import time), CPython 3.10 sets
its "unhandled KeyboardInterrupt" flag, and the interpreter then kills itself with SIGINT at
exit (return code -2) even though the exception was handled. All of these happened with
Ctrl-C during the first second of ``qblif run`` on a cold start (no ``__pycache__``), when
most of that second is spent importing. So a signal that arrives while the main thread is
importing is held back: a helper thread re-sends it to the main thread as soon as no import
is under way, and the exception is raised there (:func:`hold_back`). Likewise, when the
handler happens to run inside a weakref callback, a ``__del__`` or a fork hook, where Python
prints and drops any exception, the signal is sent again (:func:`watch_swallowed`).

The handlers need only the standard library, so the CLI installs them before anything else.
"""
from __future__ import annotations

import contextlib
import signal
import sys
import threading
import time

INTERRUPTS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
# handler each interrupt has when nobody has set one (only those are replaced)
DEFAULT_HANDLERS = {signal.SIGINT: signal.default_int_handler,
                    signal.SIGTERM: signal.SIG_DFL, signal.SIGHUP: signal.SIG_DFL}
HOLD_POLL_S = 0.01      # how often a held-back signal checks whether the import is done


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP arrived; ``signum`` is the signal."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


_received = []          # signals that interrupted this process (the CLI reports the last one)
_state = {"armed": False, "pending": None, "hook": sys.unraisablehook, "sender": None}


def record(signum: int) -> None:
    """Remember that ``signum`` interrupted this process (see :func:`last_signal`)."""
    _received.append(signum)


def last_signal():
    """The last signal turned into an exception by :func:`interrupt_handler` or a session."""
    return _received[-1] if _received else None


def forget_signals() -> None:
    _received.clear()


def exception_for(signum: int) -> KeyboardInterrupt:
    """``KeyboardInterrupt()`` for SIGINT, else :class:`Terminated` (``signum``), marked as
    ours (``qblif_signal``) for :func:`watch_swallowed`."""
    exc = KeyboardInterrupt() if signum == signal.SIGINT else Terminated(signum)
    exc.qblif_signal = signum
    return exc


# ------------------------------------------------------------------ raised where it is ignored
def _swallowed(unraisable) -> None:
    """``sys.unraisablehook``: an interruption raised where Python ignores exceptions (the
    handler ran inside a weakref callback, a ``__del__`` or a fork hook: "Exception ignored
    in ...", and the command went on) is sent to the main thread again, not printed."""
    signum = getattr(unraisable.exc_value, "qblif_signal", None)
    if signum is None:
        return _state["hook"](unraisable)
    _send_again(signum)     # from another thread: sent from here, it would be raised here


def watch_swallowed():
    """Install :func:`_swallowed` as ``sys.unraisablehook`` (chained to the current one);
    returns the token for :func:`unwatch_swallowed`."""
    if sys.unraisablehook is _swallowed:
        return None
    _state["hook"], previous = sys.unraisablehook, sys.unraisablehook
    sys.unraisablehook = _swallowed
    return previous


def unwatch_swallowed(token) -> None:
    if token is not None and sys.unraisablehook is _swallowed:
        sys.unraisablehook = token


# ------------------------------------------------------------------ held back during imports
def _busy(frame) -> bool:
    """Inside an import, or inside this module's own re-sending (a handler that raised there
    would lose the interruption again)."""
    while frame is not None:
        if frame.f_code.co_filename.startswith("<frozen importlib._bootstrap") \
                or frame.f_code in _OWN_CODE:
            return True
        frame = frame.f_back
    return False


def _resend(signum: int, main_ident: int) -> None:
    handler = signal.getsignal(signum)
    # to whatever handler is current by now: an interrupt even to the default action, any
    # other signal (a session's private wake-up) only to a Python handler
    if callable(handler) or (signum in INTERRUPTS and handler == signal.SIG_DFL):
        signal.pthread_kill(main_ident, signum)


_again = set()                  # signals to send to the main thread again
_wake = threading.Event()


def _sender(main_ident: int) -> None:
    """The helper thread: sends the signals in ``_again`` once the main thread is not busy."""
    while True:
        _wake.wait()
        time.sleep(HOLD_POLL_S)
        frame = sys._current_frames().get(main_ident)
        if frame is None:                       # the main thread has ended
            return
        busy = _busy(frame)
        del frame
        if busy:
            continue
        _wake.clear()
        while _again:
            with contextlib.suppress(KeyError):
                _resend(_again.pop(), main_ident)


def _send_again(signum: int) -> None:
    """Send ``signum`` to the main thread again in :data:`HOLD_POLL_S` s or, if it is then
    importing, once that import is done (from a helper thread)."""
    _again.add(signum)
    helper = _state.get("sender")
    if helper is None or not helper.is_alive():     # also: none in a forked child
        helper = _state["sender"] = threading.Thread(
            target=_sender, args=(threading.main_thread().ident,), name="qblif-signal-resender",
            daemon=True)
        helper.start()
    _wake.set()


def hold_back(signum: int, frame) -> bool:
    """In a Python signal handler: if the main thread is importing (or re-sending a signal
    here), arrange for ``signum`` to be sent to it again once that is done, and return True
    (the handler then returns without raising). False otherwise."""
    if not _busy(frame):
        return False
    _send_again(signum)
    return True


_OWN_CODE = {_swallowed.__code__, _send_again.__code__}     # see _busy


# ------------------------------------------------------------------ the CLI's handler
def interrupt_handler(signum, frame):
    """Raise ``KeyboardInterrupt`` (SIGINT) or :class:`Terminated`, and remember the signal.

    Held back while a module is being imported (:func:`hold_back`), and until :func:`arm`
    (the CLI arms it once it can report an interruption)."""
    if not _state["armed"]:
        _state["pending"] = signum
        return
    if hold_back(signum, frame):
        return
    record(signum)
    raise exception_for(signum)


interrupt_handler.qblif = True      # a session may replace it (and restores it afterwards)


def install() -> dict:
    """Install :func:`interrupt_handler` for each of SIGINT, SIGTERM and SIGHUP whose handler
    is the default, or the first handler that ``qblif/__init__`` set for the ``qblif``
    command (a signal it held becomes pending, see :func:`arm`); returns ``{signal:
    previous handler}`` for :func:`restore`."""
    saved = {}
    for sig, default in DEFAULT_HANDLERS.items():
        current = signal.getsignal(sig)
        if getattr(current, "qblif_early", False):   # qblif/__init__'s first handler
            signal.signal(sig, interrupt_handler)
            for held in current.held:
                _state["pending"] = held
        elif current is default:
            saved[sig] = signal.signal(sig, interrupt_handler)
    saved["unraisablehook"] = watch_swallowed()
    return saved


def restore(saved: dict) -> None:
    for sig, old in saved.items():
        if sig == "unraisablehook":
            unwatch_swallowed(old)
        else:
            signal.signal(sig, old)


def arm() -> None:
    """From now on :func:`interrupt_handler` raises; a signal that came before is raised now."""
    _state["armed"] = True
    signum, _state["pending"] = _state["pending"], None
    if signum is not None:
        record(signum)
        raise exception_for(signum)


def disarm() -> None:
    _state["armed"] = False


def clear_unhandled_flag() -> None:
    """Forget that a ``KeyboardInterrupt`` once left ``exec``/``eval``'d code.

    CPython 3.10 sets an "unhandled KeyboardInterrupt" flag whenever one leaves code run by
    ``exec``/``eval`` of a string, handled later or not, and at exit kills the interpreter
    with SIGINT instead of returning its exit code. Each ``exec`` of a string resets the flag
    first, so a successful one clears it. Call after an interruption has been handled."""
    exec("pass", {})
