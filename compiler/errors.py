"""The one error type of the compiler."""
from __future__ import annotations

from qblif_lava.errors import QblifError
from qblif_lava.netx_check import ModelFileError


class CompileError(ModelFileError):
    """A NetX file is malformed, inconsistent or unsupported.

    The message names the layer index and the HDF5 key at fault, e.g.
    ``layer 2 key 'neuron/vThMant': ...``. The CLI prints it on one line and exits 2.
    The shared checks of :mod:`qblif_lava.netx_check` raise its base class
    :class:`~qblif_lava.netx_check.ModelFileError`; :func:`compiler.compile` re-raises those
    as ``CompileError`` (:meth:`of`).
    """

    exit_code = 2

    @classmethod
    def of(cls, exc: ModelFileError) -> "CompileError":
        return exc if isinstance(exc, cls) else cls(exc.reason, exc.layer, exc.key)


class ResourceLimitError(QblifError):
    """A run would need more OS processes or host memory than the documented limits
    (``compiler.passes.resources.host_estimate``); ``force=True`` / ``--force`` overrides."""

    exit_code = 2
