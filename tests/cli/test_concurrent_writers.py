"""Two writers of one output at once (issue 21): ``qblif train --out same.net`` twice, and
``qblif evaluate --update-card`` twice on one card. The first holds the output's lock
(``.NAME.net.lock``, ``fcntl.flock``) and writes whole; the second is refused at once with
one line and exit 1, and nothing of it reaches the files."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from qblif.core.fileio import BusyError, exclusive, lock_path

ROOT = Path(__file__).resolve().parents[2]
MODEL = ROOT / "netx_models" / "digits_qblif_mlp.net"
TRAIN = ("train", "--dataset", "digits", "--timesteps", "2", "--epochs", "1", "--limit", "64",
         "--val-limit", "16", "--test-limit", "16", "--no-progress")


def start(*args, cwd) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.Popen([sys.executable, "-m", "qblif.cli.main", *map(str, args)],
                            cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def wait_for(path: Path, first: subprocess.Popen, timeout: float = 120) -> None:
    t0 = time.monotonic()
    while not path.exists():
        assert first.poll() is None, first.communicate()
        assert time.monotonic() - t0 < timeout, f"{path} never appeared"
        time.sleep(0.02)


def second_is_refused(first: subprocess.Popen, lock: Path, *args, cwd) -> None:
    """Once ``first`` holds ``lock`` it is stopped (SIGSTOP: it cannot finish before the
    second starts, however slow the machine), the second runs, then the first goes on."""
    wait_for(lock, first)
    os.kill(first.pid, signal.SIGSTOP)
    try:
        second = start(*args, cwd=cwd)
        out, err = second.communicate(timeout=120)
    finally:
        os.kill(first.pid, signal.SIGCONT)
    assert second.returncode == 1, err
    assert err.strip().count("\n") == 0 and "another qblif process is" in err, err
    _, err_first = first.communicate(timeout=300)
    assert first.returncode == 0, err_first
    assert not lock.exists()


def test_two_trainers_on_one_out(tmp_path):
    out = tmp_path / "same.net"
    first = start(*TRAIN, "--seed", "1", "--out", out, cwd=tmp_path)
    second_is_refused(first, Path(lock_path(str(out))), *TRAIN, "--seed", "2", "--out", out,
                      cwd=tmp_path)
    card = json.loads((tmp_path / "same.json").read_text())
    assert card["seed"] == 1 and card["file"] == "same.net"      # all of the first run
    assert sorted(os.listdir(tmp_path)) == ["same" + s for s in (".json", ".md", ".net", ".png")]


def test_two_card_updates_on_one_card(tmp_path):
    model = tmp_path / "m.net"
    shutil.copy(MODEL, model)
    card = json.loads(MODEL.with_suffix(".json").read_text())
    (tmp_path / "m.json").write_text(json.dumps(card))
    args = ("evaluate", model, "--update-card", "--engine", "exact", "--threads", "1")
    first = start(*args, "--test-limit", "300", cwd=tmp_path)
    second_is_refused(first, Path(lock_path(str(model))), *args, "--test-limit", "20",
                      cwd=tmp_path)
    new = json.loads((tmp_path / "m.json").read_text())
    assert new["test_samples"] == 300                            # the first one's, whole


def test_lock_is_exclusive_in_process_and_released(tmp_path):
    out = str(tmp_path / "x.net")
    with exclusive(out):
        with pytest.raises(BusyError, match="another qblif process is writing"):
            with exclusive(out):
                pass
    assert not os.path.exists(lock_path(out))
    with exclusive(out):                     # free again
        pass
