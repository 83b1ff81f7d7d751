"""A supervised Lava runtime: no hang, no orphan, no leftover after any fault.

Lava 0.10 runs every process model (and each runtime service) in its own forked OS
process, and the channels in POSIX shared memory (``/dev/shm/psm_*``) owned by a
``multiprocessing`` manager process. Left alone it has these faults (docs/hardening.md):

- when a model raises, ``stop()`` blocks forever; when a worker is killed (an out-of-memory
  kill), ``run()`` blocks forever;
- SIGTERM, SIGHUP or SIGKILL to the parent orphans every worker and its shared memory;
- Ctrl-C reaches every worker of the terminal's process group: one traceback each.

:func:`lava_session` (``with lava_session(proc) as s: proc.run(...)``) fixes them:

- **Workers** forked during a session ignore SIGINT, take the default action on SIGTERM and
  SIGHUP, and are killed by the kernel when the parent dies (``prctl(PR_SET_PDEATHSIG,
  SIGKILL)``, set in an ``os.register_at_fork`` hook that acts only during a session).
- **A supervisor thread** polls the workers every :data:`POLL_S` s; when one has died with a
  non-zero exit status, the main thread's blocked ``run()`` is interrupted (a private
  ``SIGUSR1``) and :class:`WorkerDied` names the process, its model and its exit signal.
- **Signals**: while a session runs in the main thread, SIGTERM and SIGHUP raise
  :class:`Terminated` (a ``KeyboardInterrupt``, like SIGINT) where their handler was the
  default, so every interruption unwinds the same way: the runtime is stopped at once
  (workers terminated, port threads released, shared memory unlinked), the session directory
  removed, and the exception re-raised. Signals that arrive during that cleanup are deferred
  until it is done, and those that arrive while a module is being imported (Lava imports
  process models while it compiles) until that import is done
  (:func:`qblif.core.interrupts.hold_back`).
- **Leftovers**: each session owns a directory ``$TMPDIR/qblif-run-<pid>-*`` (recordings go
  there: :attr:`LavaSession.workdir`) listing its shared-memory segments. Every new session
  first removes the directories of dead owners and unlinks the segments they list
  (:func:`clean_stale`), so a SIGKILLed run's leftovers go at the next run.

Worker supervision and signal handling need the main thread; elsewhere a session still
stops the runtime with a time limit and cleans up (:func:`stop_runtime`).
"""
from __future__ import annotations

import contextlib
import ctypes
import multiprocessing
import os
import shutil
import signal
import tempfile
import threading

from qblif.core import interrupts
from qblif.core.interrupts import Terminated, forget_signals, last_signal  # noqa: F401 (API)

STOP_TIMEOUT_S = 5.0
POLL_S = 0.2
RUN_DIR_PREFIX = "qblif-run-"
SHM_LIST = "shm-segments"
SHM_DIR = "/dev/shm"
_PR_SET_PDEATHSIG = 1
_WAKE_SIGNAL = signal.SIGUSR1


class WorkerDied(RuntimeError):
    """A Lava worker process died during a run (killed, crashed, out of memory)."""


# ------------------------------------------------------------------ forked workers
_state = {"active": 0, "parent": None}


def _libc():
    try:
        return ctypes.CDLL(None, use_errno=True)
    except OSError:   # pragma: no cover - non-glibc platforms
        return None


_LIBC = _libc()


def _after_fork_in_child() -> None:
    """In a worker forked during a session: die with the parent, leave signals to it."""
    if not _state["active"]:
        return
    _state["active"] = 0            # the child runs no session of its own
    with contextlib.suppress(Exception):
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        for sig in (signal.SIGTERM, signal.SIGHUP, _WAKE_SIGNAL):
            signal.signal(sig, signal.SIG_DFL)
    if _LIBC is not None and hasattr(_LIBC, "prctl"):
        _LIBC.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
    if os.getppid() != _state["parent"]:   # the parent died before prctl took effect
        os._exit(1)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


# ------------------------------------------------------------------ leftovers
def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def clean_stale(tmpdir: str | None = None) -> list:
    """Remove ``qblif-run-<pid>-*`` directories whose owner pid is dead, and unlink the
    shared-memory segments they list. Returns the removed directory paths."""
    tmpdir = tmpdir or tempfile.gettempdir()
    removed = []
    try:
        names = os.listdir(tmpdir)
    except OSError:
        return removed
    for name in names:
        if not name.startswith(RUN_DIR_PREFIX):
            continue
        pid = name[len(RUN_DIR_PREFIX):].split("-", 1)[0]
        if not pid.isdigit() or _pid_alive(int(pid)):
            continue
        path = os.path.join(tmpdir, name)
        with contextlib.suppress(OSError):
            with open(os.path.join(path, SHM_LIST)) as f:
                for seg in f.read().split():
                    if "/" not in seg and seg.startswith("psm_"):
                        with contextlib.suppress(OSError):
                            os.unlink(os.path.join(SHM_DIR, seg))
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path)
    return removed


# ------------------------------------------------------------------ stopping
def stop_runtime(proc, timeout: float = STOP_TIMEOUT_S, force: bool = False) -> bool:
    """Stop the runtime that ``proc`` (any process of the network) runs in.

    Returns True when Lava stopped cleanly, False when its OS processes had to be
    terminated (always with ``force``: after an interruption or a dead worker, Lava's own
    ``stop()`` would wait for answers that never come). A process that never ran is left
    alone.
    """
    runtime = getattr(proc, "_runtime", None)
    if runtime is None:
        return True
    if not force:
        errors = []

        def _stop():
            try:
                proc.stop()
            except Exception as exc:  # noqa: BLE001 - handled by the forced path
                errors.append(exc)

        stopper = threading.Thread(target=_stop, name="lava-stop", daemon=True)
        stopper.start()
        stopper.join(timeout)
        if not stopper.is_alive() and not errors:
            return True
    _force_stop(runtime)
    return False


def _end(child) -> None:
    """Terminate (then kill) a ``multiprocessing.Process`` that is still running, and reap it."""
    popen = getattr(child, "_popen", None)
    if popen is None or popen.poll() is not None:
        return
    with contextlib.suppress(Exception):
        child.terminate()
        if popen.wait(2.0) is None:
            child.kill()
            popen.wait(2.0)


def _actors(runtime) -> list:
    infra = getattr(runtime, "_messaging_infrastructure", None)
    return list(getattr(infra, "actors", []) or [])


def _smm_server(runtime):
    """The shared-memory manager's server process (a ``multiprocessing.Process``) or None."""
    infra = getattr(runtime, "_messaging_infrastructure", None)
    manager = getattr(getattr(infra, "smm", None), "_manager", None)
    return getattr(manager, "_process", None)


def _force_stop(runtime) -> None:
    """Terminate the runtime's OS processes, release its port threads and shared memory."""
    infra = getattr(runtime, "_messaging_infrastructure", None)
    # (actor, its Popen) taken once: a worker reaped meanwhile has ``_popen`` set to None
    actors = [(a, a._popen) for a in _actors(runtime)
              if not getattr(a, "_closed", False) and a._popen is not None]
    for actor, popen in actors:           # SIGTERM all first, then wait: seconds, not N x
        if popen.poll() is None:
            with contextlib.suppress(Exception):
                actor.terminate()
    for actor, popen in actors:
        if popen.wait(2.0) is None:
            with contextlib.suppress(Exception):
                actor.kill()
                popen.wait(2.0)
        with contextlib.suppress(Exception):
            actor.join()                  # closes the result pipes; Lava checks _is_done
    ports = list(getattr(runtime, "_open_ports", []) or []) \
        + list(getattr(runtime, "runtime_to_service", []) or []) \
        + list(getattr(runtime, "service_to_runtime", []) or [])
    for port in ports:                    # wakes the parent's daemon port threads
        with contextlib.suppress(Exception):
            port.join()
    smm = getattr(infra, "smm", None)
    if smm is not None:
        server = _smm_server(runtime)
        with contextlib.suppress(Exception):
            smm.shutdown()
        # interrupted inside multiprocessing's manager start, the manager has no shutdown()
        # yet: end its server here (else the interpreter waits for it at exit)
        _end(server)
    if infra is not None:
        # all stopped: Lava's own stop() of the messaging (each process's __del__ runs it at
        # exit) must not try again; it raises where start() was interrupted (no manager yet)
        infra.stop = lambda: None
    watchdog = getattr(runtime, "_watchdog_manager", None)
    if watchdog is not None:
        with contextlib.suppress(Exception):
            watchdog.stop()
    runtime._is_started = runtime._is_running = False   # no second stop() from __del__


def release_registry(runtime) -> int:
    """Drop the processes of ``runtime``'s graph and their Vars from Lava's global registries.

    Lava 0.10's ``ProcessServer`` and ``VarServer`` singletons append every process and Var
    ever created and never let go, so each run keeps its whole process graph (Vars' initial
    values, e.g. weight matrices, and the compiler's builders, channels and ports) alive for
    the life of the interpreter: the per-cycle memory growth of issue 10 (D12,
    docs/hardening.md). The ids they issued stay unique (the counters are untouched).
    Each Lava process also adds a console handler to the root logger (an ERROR-level
    ``StreamHandler`` with Lava's ``LogConfig`` format); all but the first of those are removed
    too (else a Lava error would be printed once per process ever created).
    Returns the number of processes released.
    """
    import logging

    from lava.magma.core.process.process import LogConfig, ProcessServer
    from lava.magma.core.process.variable import VarServer
    root, kept = logging.getLogger(), False
    for h in list(root.handlers):
        if type(h) is logging.StreamHandler and h.formatter is not None \
                and h.formatter._fmt == LogConfig.format:
            if kept:
                root.removeHandler(h)
            kept = True
    exe = getattr(runtime, "_executable", None)
    procs = {id(p) for p in (getattr(exe, "proc_builders", None) or {})}
    if not procs:
        return 0
    server = ProcessServer()
    server.processes = [p for p in server.processes if id(p) not in procs]
    vs = VarServer()
    vs.vars = [v for v in vs.vars if id(getattr(v, "process", None)) not in procs]
    return len(procs)


# ------------------------------------------------------------------ the session
def _describe(runtime, actor) -> str:
    """``'layer1_qblif (PyQBLIFModelFixed, pid 123)'`` for a worker process.

    ``multiprocessing`` drops a started process's arguments, so the worker is found by
    position: Lava starts one actor per Python process model, in the order of
    ``executable.proc_builders``, then one per runtime service."""
    exe = getattr(runtime, "_executable", None)
    named = []
    for proc, b in (getattr(exe, "proc_builders", None) or {}).items():
        if hasattr(b, "proc_model") and hasattr(b, "py_ports"):    # a PyProcessBuilder
            named.append(f"{getattr(proc, 'name', type(proc).__name__)} "
                         f"({getattr(b.proc_model, '__name__', 'model')}")
    for b in (getattr(exe, "runtime_service_builders", None) or {}).values():
        named.append(f"Lava runtime service ({getattr(b.rs_class, '__name__', '?')}")
    actors = _actors(runtime)
    k = next((i for i, a in enumerate(actors) if a is actor), None)
    label = named[k] if k is not None and k < len(named) else "Lava worker (unknown"
    return f"{label}, pid {actor.pid})"


def _exit_text(code: int) -> str:
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"was killed by {signal.Signals(-code).name}"
        return f"was killed by signal {-code}"
    return f"exited with status {code}"


class LavaSession:
    """One supervised run (see the module docstring). ``workdir``: the session directory."""

    def __init__(self, proc, timeout: float = STOP_TIMEOUT_S):
        self.proc = proc
        self.timeout = timeout
        self.failure = None
        self.workdir = None
        self._main = threading.current_thread() is threading.main_thread()
        self._stop = threading.Event()
        self._thread = None
        self._saved = {}
        self._cleaning = False
        self._deferred = None
        self._shm_seen = 0
        self._hook = None
        self._children = set()          # multiprocessing children alive before the session

    # signals ------------------------------------------------------------
    def _on_signal(self, signum, frame):
        if not self._cleaning and interrupts.hold_back(signum, frame):
            return                          # raised once the import under way is done
        if signum != _WAKE_SIGNAL:
            interrupts.record(signum)
        if signum == _WAKE_SIGNAL:
            exc = WorkerDied(self.failure or "a Lava worker died")
            exc.qblif_signal = signum       # sent again if swallowed (interrupts.watch_swallowed)
        else:
            exc = interrupts.exception_for(signum)
        if self._cleaning:
            self._deferred = self._deferred or exc
            return
        raise exc

    def _install(self):
        self._hook = interrupts.watch_swallowed()
        wanted = {_WAKE_SIGNAL: None, signal.SIGTERM: signal.SIG_DFL,
                  signal.SIGHUP: signal.SIG_DFL, signal.SIGINT: signal.default_int_handler}
        for sig, only_if in wanted.items():
            old = signal.getsignal(sig)
            if only_if is None or old is only_if or getattr(old, "qblif", False):
                self._saved[sig] = old
                signal.signal(sig, self._on_signal)

    def _restore(self):
        interrupts.unwatch_swallowed(getattr(self, "_hook", None))
        self._hook = None
        for sig, old in self._saved.items():
            with contextlib.suppress(Exception):
                signal.signal(sig, old if old is not None else signal.SIG_DFL)
        self._saved.clear()

    # supervisor -----------------------------------------------------------
    def _watch(self):
        main = threading.main_thread().ident
        while not self._stop.wait(POLL_S):
            runtime = getattr(self.proc, "_runtime", None)
            if runtime is None:
                continue
            self._record_shm(runtime)
            server = _smm_server(runtime)
            for actor in _actors(runtime) + ([server] if server is not None else []):
                popen = getattr(actor, "_popen", None)
                code = None if popen is None else popen.poll()
                if code not in (None, 0):
                    who = f"Lava shared-memory manager (pid {actor.pid})" if actor is server \
                        else _describe(runtime, actor)
                    self.failure = f"{who} {_exit_text(code)}"
                    if self._main and not self._stop.is_set():
                        signal.pthread_kill(main, _WAKE_SIGNAL)
                    return

    def _record_shm(self, runtime):
        """Keep the session directory's list of this runtime's shared-memory segments."""
        smm = getattr(getattr(runtime, "_messaging_infrastructure", None), "smm", None)
        handles = list(getattr(smm, "_shared_memory_handles", []) or [])
        if len(handles) == self._shm_seen or self.workdir is None:
            return
        self._shm_seen = len(handles)
        names = "\n".join(h.name.lstrip("/") for h in handles if getattr(h, "name", None))
        tmp = os.path.join(self.workdir, SHM_LIST + ".tmp")
        with contextlib.suppress(OSError):
            with open(tmp, "w") as f:
                f.write(names + "\n")
            os.replace(tmp, os.path.join(self.workdir, SHM_LIST))

    # context -------------------------------------------------------------
    def __enter__(self) -> "LavaSession":
        clean_stale()
        counted = False
        try:
            self._children = set(multiprocessing.active_children())
            self.workdir = tempfile.mkdtemp(prefix=f"{RUN_DIR_PREFIX}{os.getpid()}-")
            _state["active"] += 1
            counted = True
            _state["parent"] = os.getpid()
            if self._main:
                self._install()
            self._thread = threading.Thread(target=self._watch, name="lava-supervisor",
                                            daemon=True)
            self._thread.start()
            return self
        except BaseException:
            # interrupted (SIGTERM to the parent) before the with-block began: no __exit__
            # will come, so undo here (a run directory was left behind otherwise)
            self._cleaning = True
            self._stop.set()
            if self._thread is not None and self._thread.is_alive():
                self._thread.join()
            if counted:
                _state["active"] = max(0, _state["active"] - 1)
            if self.workdir is not None:
                shutil.rmtree(self.workdir, ignore_errors=True)
            self._restore()
            self._cleaning = False
            raise

    def __exit__(self, exc_type, exc, tb):
        self._cleaning = True
        try:
            self._stop.set()
            self._thread.join()
            runtime = getattr(self.proc, "_runtime", None)
            if runtime is not None:
                self._record_shm(runtime)
            force = self.failure is not None or (
                exc_type is not None and issubclass(exc_type, KeyboardInterrupt))
            stop_runtime(self.proc, self.timeout, force=force)
            if force:   # a worker forked but not yet listed by Lava when the run was interrupted
                for child in set(multiprocessing.active_children()) - self._children:
                    _end(child)
            if runtime is not None:
                with contextlib.suppress(Exception):
                    release_registry(runtime)
        finally:
            _state["active"] = max(0, _state["active"] - 1)
            shutil.rmtree(self.workdir, ignore_errors=True)
            self._restore()
            self._cleaning = False
        if self.failure is not None and not (
                exc_type is not None and issubclass(exc_type, (KeyboardInterrupt, WorkerDied))):
            # Lava noticed first (e.g. a RuntimeError from a closed channel), or nobody did:
            # say what died
            raise WorkerDied(self.failure) from None
        if exc_type is None and self._deferred is not None:
            raise self._deferred
        return False


def lava_session(proc, timeout: float = STOP_TIMEOUT_S) -> LavaSession:
    """``with lava_session(proc) as s: proc.run(...)``: a supervised run (module docstring);
    the runtime is always stopped on exit, also on error or interruption."""
    return LavaSession(proc, timeout)
