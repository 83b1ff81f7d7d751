"""Fixtures shared by several test files."""
import pytest


@pytest.fixture
def qblif(monkeypatch, capsys):
    """``qblif_lava.cli.main`` with only the ``train`` sub-command (other commands belong to
    other modules); returns (rc, stdout, stderr). A test file may define its own ``qblif``."""
    from qblif_lava import cli
    monkeypatch.setattr(cli, "COMMAND_MODULES", ("qblif_lava.training.cli",))
    capsys.readouterr()

    def run(*argv):
        rc = cli.main(["train", *argv])
        out, err = capsys.readouterr()
        return rc, out, err
    return run
