"""Execution engines of a compiled IR other than Lava: :mod:`compiler.engine.exact`, the
batched exact engine (torch, CPU or CUDA)."""
from compiler.engine.exact import ExactEngine, run_exact
from compiler.engine import kinds  # noqa: F401,E402  (registers the coverage kinds)

__all__ = ["ExactEngine", "run_exact"]
