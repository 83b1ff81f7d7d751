"""Stopping a Lava runtime reliably.

Lava 0.10 runs every process model in its own OS process. When a model raises,
``run()`` raises a ``RuntimeError`` but a following ``stop()`` blocks forever
(the runtime waits for a TERMINATED answer the dead model never sends) and the
shared-memory segments stay behind. :func:`stop_runtime` calls ``stop()`` with a
time limit and, when it does not return, terminates the runtime's OS processes
and shuts its shared-memory manager down. Use it (or :func:`lava_session`)
wherever a Lava run is started.
"""
from __future__ import annotations

import contextlib
import threading

STOP_TIMEOUT_S = 5.0


def stop_runtime(proc, timeout: float = STOP_TIMEOUT_S) -> bool:
    """Stop the runtime that ``proc`` (any process of the network) runs in.

    Returns True when Lava stopped cleanly, False when its OS processes had to be
    terminated. A process that never ran is left alone.
    """
    runtime = getattr(proc, "_runtime", None)
    if runtime is None:
        return True
    errors = []

    def _stop():
        try:
            proc.stop()
        except Exception as exc:  # noqa: BLE001 - reported below through the forced path
            errors.append(exc)

    stopper = threading.Thread(target=_stop, name="lava-stop", daemon=True)
    stopper.start()
    stopper.join(timeout)
    if not stopper.is_alive() and not errors:
        return True
    _force_stop(runtime)
    return False


def _force_stop(runtime) -> None:
    """Terminate the runtime's OS processes and release its shared memory."""
    infra = getattr(runtime, "_messaging_infrastructure", None)
    for actor in list(getattr(infra, "actors", []) or []):
        if getattr(actor, "_closed", False) or actor._popen is None:
            continue
        if actor._popen.poll() is None:
            actor.terminate()
            if actor._popen.wait(2.0) is None:
                actor.kill()
                actor._popen.wait(2.0)
    smm = getattr(infra, "smm", None)
    if smm is not None:
        with contextlib.suppress(Exception):
            smm.shutdown()
    watchdog = getattr(runtime, "_watchdog_manager", None)
    if watchdog is not None:
        with contextlib.suppress(Exception):
            watchdog.stop()


@contextlib.contextmanager
def lava_session(proc, timeout: float = STOP_TIMEOUT_S):
    """``with lava_session(proc): proc.run(...)`` always stops the runtime, also on error."""
    try:
        yield proc
    finally:
        stop_runtime(proc, timeout)
