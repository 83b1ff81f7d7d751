"""NetX HDF5 -> graph IR -> Lava process graph compiler for QB-LIF networks.

>>> with compiler.compile("model.net", encoding="graded") as net:
...     counts = net.run(frames, steps_per_sample=16)   # {layer: (S, T, *shape)}
...     print(net.report())

Passes, in order: :data:`compiler.passes.PASSES`. The names below are imported on first
use, so that ``import compiler.cli`` (``qblif compile --help``) stays fast.
"""
from compiler.errors import CompileError

__all__ = ["CompileError", "CompiledNetwork", "compile", "compile_ir", "PASSES"]


def __getattr__(name):
    if name in ("compile", "CompiledNetwork"):
        from compiler import runtime
        return getattr(runtime, name)
    if name == "compile_ir":
        from compiler.build import compile_ir
        return compile_ir
    if name == "PASSES":
        from compiler.passes import PASSES
        return PASSES
    raise AttributeError(f"module 'compiler' has no attribute {name!r}")
