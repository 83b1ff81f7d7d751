"""Error types the CLI turns into one line and a non-zero exit (no traceback)."""


class QblifError(Exception):
    """Base class of every user-facing error of qblif-lava (bad input, missing data, ...)."""

    exit_code = 1


class DataError(QblifError):
    """A dataset is missing or malformed (the message names the file or package)."""
