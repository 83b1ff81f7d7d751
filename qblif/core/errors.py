"""Error types the CLI turns into one line and a non-zero exit (no traceback).

Exit codes: :class:`QblifError` 1; a rejected file (:class:`ModelFileError`, :class:`CheckpointError`,
:class:`CompileError`) or a resource limit (:class:`ResourceLimitError`) 2."""


class QblifError(Exception):
    """Base class of every user-facing error of qblif-lava (bad input, missing data, ...)."""

    exit_code = 1


class DataError(QblifError):
    """A dataset is missing or malformed (the message names the file or package)."""


class ModelFileError(QblifError):
    """A NetX file is malformed, out of range or unsupported. The message names the layer
    index and the HDF5 key at fault, e.g. ``layer 2 key 'neuron/vThMant': ...``, on one line."""

    exit_code = 2

    def __init__(self, message: str, layer=None, key=None):
        self.layer, self.key, self.reason = layer, key, str(message)
        where = []
        if layer is not None:
            where.append(f"layer {layer}" if isinstance(layer, int) else f"/{layer}")
        if key is not None:
            where.append(f"key {key!r}")
        text = (" ".join(where) + ": " if where else "") + str(message)
        super().__init__(" ".join(text.split()))  # always one line


class CompileError(ModelFileError):
    """A NetX file is malformed, inconsistent or unsupported.

    The message names the layer index and the HDF5 key at fault, e.g.
    ``layer 2 key 'neuron/vThMant': ...``. The CLI prints it on one line and exits 2.
    The shared checks of :mod:`qblif.netx.check` raise its base class
    :class:`~qblif.netx.check.ModelFileError`; :func:`qblif.compile` re-raises those
    as ``CompileError`` (:meth:`of`).
    """

    exit_code = 2

    @classmethod
    def of(cls, exc: ModelFileError) -> "CompileError":
        return exc if isinstance(exc, cls) else cls(exc.reason, exc.layer, exc.key)


class ResourceLimitError(QblifError):
    """A run would need more OS processes or host memory than the documented limits
    (``qblif.passes.resources.host_estimate``); ``force=True`` / ``--force`` overrides."""

    exit_code = 2


class CheckpointError(QblifError):
    """A training checkpoint is missing, foreign, of another version, or holds more than
    tensors and plain values (``qblif.training.checkpoint``); the message names the file."""

    exit_code = 2


class InputFileError(QblifError):
    """An input array file (``qblif run --input x.npy``) is malformed, lies about its size or
    is past the limits (``qblif.core.npyfile``); the message names the file."""

    exit_code = 2
