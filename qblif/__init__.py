"""qblif-lava: QB-LIF burst neurons for Intel's Lava stack.

Train with lava-dl SLAYER (:mod:`qblif.training`), compile a NetX HDF5 or NIR file to a typed
graph IR (:mod:`qblif.ir`, :mod:`qblif.passes`), and run it in Lava (:mod:`qblif.lava`) or in
the batched exact engine (:mod:`qblif.exact`) with exactly a Loihi neurocore's integers.

>>> import qblif
>>> with qblif.compile("netx_models/digits_qblif_mlp.net") as net:
...     counts = net.run(frames, steps_per_sample=16)   # {layer: (S, T, *shape)}
...     print(net.report())

The layers and the import rule are in docs/architecture.md; the semantics in
:mod:`qblif.core.reference`. Names are imported on first use, so ``import qblif`` loads
neither torch nor Lava, and SLAYER training runs without lava-nc (e.g. on a GPU machine).
"""
import sys


def _cli_process() -> bool:
    """Whether this interpreter runs the ``qblif`` command (``python -m qblif.cli.main`` or
    the ``qblif`` console script)."""
    argv = list(getattr(sys, "orig_argv", None) or ())
    if "-m" in argv[:-1] and argv[argv.index("-m") + 1] == "qblif.cli.main":
        return True
    return bool(sys.argv) and sys.argv[0].rsplit("/", 1)[-1] == "qblif"


def _hold_signal(signum, frame):
    """SIGINT/SIGTERM/SIGHUP that come before :mod:`qblif.core.interrupts` is loaded: kept
    in ``held``; its ``install`` takes them over and the CLI raises them once it can."""
    _hold_signal.held.append(signum)


_hold_signal.held = []
_hold_signal.qblif_early = True

if _cli_process():   # the qblif command: no import before the first handler (issue 21)
    import _signal
    for _sig in (_signal.SIGINT, _signal.SIGTERM, _signal.SIGHUP):
        if _signal.getsignal(_sig) in (_signal.default_int_handler, _signal.SIG_DFL):
            _signal.signal(_sig, _hold_signal)
    from qblif.core import interrupts
    interrupts.install()
    del interrupts, _signal, _sig

from qblif.core.errors import CompileError, ModelFileError, QblifError  # noqa: E402

__all__ = ["CompileError", "ModelFileError", "QblifError", "CompiledNetwork", "RunOptions",
           "compile", "compile_ir", "PASSES", "QBLIF", "__version__"]
__version__ = "0.1.0"

# public name -> module that defines it (imported on first use)
_LAZY = {
    "compile": "qblif.api",
    "CompiledNetwork": "qblif.api",
    "RunOptions": "qblif.api",
    "compile_ir": "qblif.passes.pipeline",
    "PASSES": "qblif.passes",
    "QBLIF": "qblif.lava.procs.qblif",
}


def __getattr__(name):
    if name in _LAZY:
        import importlib
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'qblif' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
