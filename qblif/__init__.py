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
from qblif.core import interrupts  # standard library only

if interrupts.cli_process():    # the qblif command: Ctrl-C handled from here on (issue 21)
    interrupts.install()
del interrupts

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
