"""Execution of a compiled IR without Lava: the numpy oracle (:mod:`qblif.exact.oracle`), and
the batched exact engine (torch, CPU or CUDA): :mod:`~qblif.exact.ops` (arithmetic per layer),
:mod:`~qblif.exact.kinds` (coverage kinds), :mod:`~qblif.exact.timeline` (the global
timeline), :mod:`~qblif.exact.engine` (runs a network), :mod:`~qblif.exact.native` (the C
kernel) and :mod:`~qblif.exact.evaluate` (``qblif evaluate``)."""
from qblif.exact.engine import ExactEngine, run_exact

__all__ = ["ExactEngine", "run_exact"]
