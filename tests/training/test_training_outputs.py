"""Writes as a unit (D5, D7): the model and its card (``.net``, ``.json``, ``.md``, ``.png``)
are written together or not at all; a full disk gives one line naming the path; ``--out``
is checked before training; a non-model file is replaced only with ``--force``."""
from __future__ import annotations

import errno
import json
import os
import subprocess
import time

import pytest

torch = pytest.importorskip("torch")

from qblif.core.fileio import WriteError, write_together  # noqa: E402
from qblif.training import train as tr  # noqa: E402

SUFFIXES = (".net", ".json", ".md", ".png")


@pytest.fixture(scope="module")
def trained():
    cfg = tr.TrainConfig(dataset="digits", timesteps=2, epochs=2, limit=64, val_limit=16,
                         test_limit=16, threshold=2.0, progress=False)
    return (cfg,) + tuple(tr.train(cfg, log=None))


def _files(d):
    return sorted(os.listdir(d))


def test_outputs_are_written_together(trained, tmp_path):
    cfg, model, res = trained
    out = str(tmp_path / "m.net")
    paths = tr.write_outputs(model, cfg, res, out)
    assert _files(tmp_path) == ["m" + s for s in (".json", ".md", ".net", ".png")]
    assert set(paths) == {"net", "json", "md", "png"}
    card = json.loads((tmp_path / "m.json").read_text())
    assert card["curves"] == "m.png" and card["file"] == "m.net"
    assert "](m.png)" in (tmp_path / "m.md").read_text()


@pytest.mark.parametrize("failing", SUFFIXES)
def test_enospc_at_any_file_leaves_nothing_or_the_old_files(trained, tmp_path, monkeypatch,
                                                           failing):
    """An injected ENOSPC while writing one of the four files: one WriteError naming it; a
    fresh directory stays empty, an earlier model and card stay byte-identical."""
    cfg, model, res = trained
    import qblif.core.fileio as fio
    real = fio._temp_beside

    def temp_beside(path):
        tmp = real(path)
        if path.endswith(failing):
            os.remove(tmp)
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return tmp
    for existing in (False, True):
        d = tmp_path / f"e{int(existing)}"
        d.mkdir()
        out = str(d / "m.net")
        if existing:
            tr.write_outputs(model, cfg, res, out)
        before = {f: (d / f).read_bytes() for f in _files(d)}
        monkeypatch.setattr(fio, "_temp_beside", temp_beside)
        with pytest.raises(WriteError) as exc:
            tr.write_outputs(model, cfg, dict(res, test_accuracy=0.0), out)
        monkeypatch.setattr(fio, "_temp_beside", real)
        msg = str(exc.value)
        assert msg == f"cannot write {out[:-4] + failing}: No space left on device"
        assert exc.value.errno == errno.ENOSPC and "\n" not in msg
        assert {f: (d / f).read_bytes() for f in _files(d)} == before   # no temp file left


def test_write_together_h5py_style_error_is_one_line(tmp_path):
    def write(tmp):
        raise RuntimeError("Can't write data (file write failed: time = x\n, errno = 28, "
                           "error message = 'No space left on device')")
    with pytest.raises(WriteError, match=r"^cannot write .*x\.net: No space left on device$"):
        write_together([(str(tmp_path / "x.net"), write)])
    assert os.listdir(tmp_path) == []


# ----------------------------------------------------------------------------- a real full disk
@pytest.fixture
def tiny_disk(tmp_path):
    """A tmpfs of a given size (root only; skipped where mounting is not allowed)."""
    mounted = []

    def make(kib):
        d = tmp_path / f"tmpfs{len(mounted)}"
        d.mkdir()
        if os.geteuid() != 0:
            pytest.skip("mounting a tmpfs needs root")
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={kib}k", "tmpfs", str(d)],
                           capture_output=True, text=True)
        if r.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip()}")
        mounted.append(d)
        return d
    yield make
    for d in mounted:
        subprocess.run(["umount", str(d)], check=False)


def test_full_disk_at_export_and_at_the_card(trained, tmp_path, tiny_disk):
    cfg, model, res = trained
    ref = tmp_path / "ref"
    ref.mkdir()
    tr.write_outputs(model, cfg, res, str(ref / "m.net"))
    net_kib = os.path.getsize(ref / "m.net") // 1024
    for kib, failing in ((4, ".net"), (net_kib + 8, None)):
        d = tiny_disk(kib)
        out = str(d / "m.net")
        with pytest.raises(WriteError) as exc:
            tr.write_outputs(model, cfg, res, out)
        msg = str(exc.value)
        assert msg.startswith("cannot write ") and msg.endswith("No space left on device")
        assert "\n" not in msg
        path = msg[len("cannot write "):].split(": ")[0]
        if failing:
            assert path == out
        else:                                 # the model fitted, a card file did not
            assert path != out and path[:-4] == out[:-4]
        assert os.listdir(d) == []


# ----------------------------------------------------------------------------- the CLI
# the `qblif` fixture (the `train` sub-command's runner) is in tests/conftest.py


TINY = ("--dataset", "digits", "--timesteps", "2", "--epochs", "1", "--limit", "32",
        "--val-limit", "16", "--test-limit", "16", "--no-progress")


def _error(err):
    lines = [ln for ln in err.splitlines() if ln.startswith("qblif train: error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


@pytest.mark.parametrize("how", ["slash", "dir", "missing-slash"])
def test_out_naming_a_directory_is_refused_before_training(qblif, tmp_path, how):
    out = {"slash": str(tmp_path) + "/", "dir": str(tmp_path),
           "missing-slash": str(tmp_path / "out" / "sub") + "/"}[how]
    t0 = time.perf_counter()
    rc, _, err = qblif("--dataset", "digits", "--epochs", "50", "--out", out)
    assert rc != 0 and time.perf_counter() - t0 < 20
    line = _error(err)
    assert out.rstrip("/") in line and "director" in line
    assert os.listdir(tmp_path) == []


def test_replacing_a_non_model_needs_force(qblif, tmp_path):
    victim = tmp_path / "notes.net"
    victim.write_text("my notes\n")
    rc, _, err = qblif(*TINY, "--epochs", "50", "--out", str(victim))
    assert rc != 0 and "--force" in _error(err) and str(victim) in _error(err)
    assert victim.read_text() == "my notes\n"
    rc, _, err = qblif(*TINY, "--out", str(victim), "--force")
    assert rc == 0, err
    from qblif.training.card import is_model_file
    assert is_model_file(str(victim))
    assert _files(tmp_path) == ["notes" + s for s in (".json", ".md", ".net", ".png")]
    rc, _, err = qblif(*TINY, "--seed", "1", "--out", str(victim))   # a model: no --force
    assert rc == 0, err
    stray = tmp_path / "other.json"
    stray.write_text("{}")
    rc, _, err = qblif(*TINY, "--out", str(tmp_path / "other.net"))
    assert rc != 0 and "other.json" in _error(err) and stray.read_text() == "{}"


def test_cli_full_disk_names_the_path(qblif, tmp_path, tiny_disk):
    d = tiny_disk(4)
    out = str(d / "m.net")
    rc, _, err = qblif(*TINY, "--out", out, "--checkpoint", str(tmp_path / "m.ckpt"))
    assert rc != 0
    line = _error(err)
    assert out in line and "No space left on device" in line
    assert os.listdir(d) == []
