"""The one error type of the compiler."""
from __future__ import annotations

from qblif_lava.errors import QblifError


class CompileError(QblifError):
    """A NetX file is malformed, inconsistent or unsupported.

    The message names the layer index and the HDF5 key at fault, e.g.
    ``layer 2 key 'neuron/vThMant': ...``. The CLI prints it on one line and exits 2.
    """

    exit_code = 2

    def __init__(self, message: str, layer=None, key=None):
        self.layer, self.key = layer, key
        where = []
        if layer is not None:
            where.append(f"layer {layer}" if isinstance(layer, int) else f"/{layer}")
        if key is not None:
            where.append(f"key {key!r}")
        text = (" ".join(where) + ": " if where else "") + str(message)
        super().__init__(" ".join(text.split()))  # always one line


class ResourceLimitError(QblifError):
    """A run would need more OS processes or host memory than the documented limits
    (``compiler.passes.resources.host_estimate``); ``force=True`` / ``--force`` overrides."""

    exit_code = 2
