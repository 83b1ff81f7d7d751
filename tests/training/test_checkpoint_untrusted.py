"""Checkpoints cannot carry code (issue 21): ``qblif train --resume`` on a pickle whose
``__reduce__`` would create a file creates nothing, prints one line and exits 2."""
from __future__ import annotations

import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from qblif.core.errors import CheckpointError  # noqa: E402
from qblif.training import checkpoint as C  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _resume(ckpt: Path, tmp_path: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "qblif.cli.main", "train", "--resume",
                           str(ckpt), "--out", str(tmp_path / "m.net")],
                          capture_output=True, text=True, env=env, timeout=120, cwd=tmp_path)


@pytest.mark.parametrize("writer", ["torch.save", "pickle"])
def test_malicious_checkpoint_runs_no_code(tmp_path, writer):
    marker = tmp_path / "pwned"
    ckpt = tmp_path / "evil.ckpt"
    payload = {"format": C.CHECKPOINT_FORMAT, "version": C.CHECKPOINT_VERSION,
               "config": _Evil(marker)}
    if writer == "torch.save":
        torch.save(payload, ckpt)
    else:
        ckpt.write_bytes(pickle.dumps(payload))
    r = _resume(ckpt, tmp_path)
    assert not marker.exists()
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    assert str(ckpt) in lines[0] and "must not carry code" in lines[0], lines[0]
    assert not (tmp_path / "m.net").exists()


def test_old_and_foreign_checkpoints_are_one_line(tmp_path):
    old = tmp_path / "old.ckpt"
    torch.save({"version": 1, "config": {}}, old)          # the pre-issue-21 format
    with pytest.raises(CheckpointError, match="not a qblif training checkpoint"):
        C.load_checkpoint(str(old))
    newer = tmp_path / "newer.ckpt"
    torch.save({"format": C.CHECKPOINT_FORMAT, "version": 99}, newer)
    with pytest.raises(CheckpointError, match="version 99 is not supported"):
        C.load_checkpoint(str(newer))
    partial = tmp_path / "partial.ckpt"
    torch.save({"format": C.CHECKPOINT_FORMAT, "version": C.CHECKPOINT_VERSION,
                "config": {}}, partial)
    with pytest.raises(CheckpointError, match="'world_size' is missing"):
        C.load_checkpoint(str(partial))
    r = _resume(newer, tmp_path)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_plain_turns_numpy_into_tensors_and_numbers():
    import numpy as np
    out = C.plain({"a": np.arange(3, dtype=np.uint32), "b": [np.float64(0.5), (np.int64(2),)]})
    assert out["a"].dtype == torch.int64 and out["a"].tolist() == [0, 1, 2]
    assert out["b"] == [0.5, (2,)] and type(out["b"][0]) is float
