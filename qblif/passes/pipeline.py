"""Front end + passes, without Lava: a network file -> the compiled IR (a networkx graph).

:func:`qblif.compile` wraps this IR for Lava (:class:`qblif.api.CompiledNetwork`);
the exact engine (:mod:`qblif.exact`) needs only the IR, so this module imports no
lava-nc process code (the passes use ``lava.utils.weightutils``, numpy only).
"""
from __future__ import annotations

from qblif.core.errors import CompileError
from qblif.passes import run_passes
from qblif.ir.from_netx import read

from qblif.core.constants import FALLBACK_INPUT_BITS


def compile_ir(path, encoding: str = "graded", input_bits=None, nir_options=None):
    """The compiled IR (a networkx graph) of ``path``, without Lava: what the exact engine
    needs, e.g. on a machine whose Python cannot host lava-nc.

    encoding: ``"graded"`` or ``"binary"`` (spec section 4). input_bits: bits of the
    direct graded input; the file's ``/qblif/inputBits`` wins, else this, else 8.
    nir_options: keyword arguments of :func:`qblif.ir.from_nir.read_nir` (``dt``,
    ``weight_bits``, ``input_scale``) for a ``.nir`` file.
    """
    if encoding not in ("graded", "binary"):
        raise CompileError(f"unknown encoding {encoding!r} (expected graded or binary)")
    if str(path).lower().endswith(".nir"):   # the NIR front end (docs/nir.md)
        from qblif.ir.from_nir import read_nir
        g = read_nir(path, input_bits=input_bits, **(nir_options or {}))
    else:
        g = read(path)
    if "input_bits" not in g.graph:
        g.graph["input_bits"] = FALLBACK_INPUT_BITS if input_bits is None else int(input_bits)
    g.graph["encoding"] = encoding
    return run_passes(g)
