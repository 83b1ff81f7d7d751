"""Fixtures shared by several test files; the shared helper modules (``tests/*.py``) and the
test modules of every subpackage folder (``tests/<subpackage>/``, named uniquely) are
importable by name from any test."""
import glob
import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
for _d in [HERE] + sorted(os.path.dirname(p) for p in glob.glob(os.path.join(HERE, "*", "test_*.py"))):
    if _d not in sys.path:
        sys.path.insert(0, _d)


@pytest.fixture
def qblif(monkeypatch, capsys):
    """``qblif.cli.main.main`` with only the ``train`` sub-command (other commands belong to
    other modules); returns (rc, stdout, stderr). A test file may define its own ``qblif``."""
    from qblif.cli import main as cli
    monkeypatch.setattr(cli, "COMMAND_MODULES", ("qblif.cli.train",))
    capsys.readouterr()

    def run(*argv):
        rc = cli.main(["train", *argv])
        out, err = capsys.readouterr()
        return rc, out, err
    return run
