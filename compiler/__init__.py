"""NetX HDF5 -> graph IR -> Lava process graph compiler for QB-LIF networks.

>>> with compiler.compile("model.net", encoding="graded") as net:
...     counts = net.run(frames, steps_per_sample=16)   # {layer: (S, T, *shape)}
...     print(net.report())

Passes, in order: :data:`compiler.passes.PASSES`.
"""
from compiler.errors import CompileError
from compiler.passes import PASSES
from compiler.runtime import CompiledNetwork, compile  # noqa: A004

__all__ = ["CompileError", "CompiledNetwork", "compile", "PASSES"]
