"""Checkpoints and resume (D6): a run stopped between epochs or inside one (SIGINT,
SIGTERM, ``stop_after``) and resumed ends with bit-identical weights to the run that was
never stopped (same seed, CPU)."""
from __future__ import annotations

import os
import shutil
import signal

import pytest

torch = pytest.importorskip("torch")

from qblif.core.errors import QblifError  # noqa: E402
from qblif.training import train as tr  # noqa: E402

CFG = dict(dataset="digits", neuron="qblif", arch="mlp", timesteps=2, epochs=3, limit=96,
           val_limit=32, test_limit=32, batch_size=32, threshold=2.0, loss_scale=0.25,
           progress=False)


def _cfg(**kw):
    return tr.TrainConfig(**dict(CFG, **kw))


def _weights(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _same(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.fixture(scope="module")
def reference():
    model, res = tr.train(_cfg(), log=None)
    return _weights(model), res


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_stopped_inside_an_epoch_resumes_bit_identical(reference, tmp_path, sig):
    ckpt = str(tmp_path / "run.ckpt")

    def hook(epoch, batch):
        if (epoch, batch) == (2, 0):
            os.kill(os.getpid(), sig)           # handled after this batch: checkpoint, stop
    with pytest.raises(tr.TrainingStopped) as exc:
        tr.train(_cfg(), log=None, checkpoint=ckpt, on_batch=hook)
    assert "epoch 2 at batch 1" in str(exc.value) and ckpt in str(exc.value)
    ck = tr.load_checkpoint(ckpt)
    assert ck["state"]["epoch"] == 1 and ck["position"]["next"] == 32
    model, res = tr.train(_cfg(), log=None, checkpoint=ckpt, resume=ckpt)
    w_ref, res_ref = reference
    assert _same(_weights(model), w_ref)
    assert [h["val_accuracy"] for h in res["history"]] == \
        [h["val_accuracy"] for h in res_ref["history"]]
    assert res["test_accuracy"] == res_ref["test_accuracy"] and res["resumed"] == 1


def test_stopped_between_epochs_resumes_bit_identical(reference, tmp_path):
    ckpt, saved = str(tmp_path / "run.ckpt"), str(tmp_path / "after_epoch1.ckpt")

    def hook(epoch, batch):
        if (epoch, batch) == (2, 0):               # the checkpoint written after epoch 1
            shutil.copy(ckpt, saved)
    tr.train(_cfg(), log=None, checkpoint=ckpt, on_batch=hook)
    ck = tr.load_checkpoint(saved)
    assert ck["state"]["epoch"] == 1 and ck["position"] is None
    model, res = tr.train(_cfg(), log=None, resume=saved)
    assert _same(_weights(model), reference[0]) and res["epochs"] == 3


def test_stop_after_then_resume_twice(reference, tmp_path):
    ckpt = str(tmp_path / "run.ckpt")
    with pytest.raises(tr.TrainingStopped):
        tr.train(_cfg(), log=None, checkpoint=ckpt, stop_after=1e-9)   # before any batch
    assert tr.load_checkpoint(ckpt)["position"]["next"] == 0
    calls = []

    def hook(epoch, batch):
        calls.append((epoch, batch))
        if len(calls) == 4:
            os.kill(os.getpid(), signal.SIGINT)
    with pytest.raises(tr.TrainingStopped):
        tr.train(_cfg(), log=None, checkpoint=ckpt, resume=ckpt, on_batch=hook)
    model, res = tr.train(_cfg(), log=None, checkpoint=ckpt, resume=ckpt)
    assert _same(_weights(model), reference[0]) and res["resumed"] == 2


def test_resume_refuses_a_different_config_and_bad_files(tmp_path):
    ckpt = str(tmp_path / "run.ckpt")
    with pytest.raises(tr.TrainingStopped):
        tr.train(_cfg(), log=None, checkpoint=ckpt, stop_after=1e-9)
    with pytest.raises(QblifError, match="lr=0.003, this run has lr=0.01"):
        tr.train(_cfg(lr=0.01), log=None, resume=ckpt)
    bad = tmp_path / "bad.ckpt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(QblifError, match="bad.ckpt"):
        tr.train(_cfg(), log=None, resume=str(bad))
    with pytest.raises(QblifError, match="does not exist"):
        tr.train(_cfg(), log=None, resume=str(tmp_path / "none.ckpt"))


# ----------------------------------------------------------------------------- the CLI
# the `qblif` fixture (the `train` sub-command's runner) is in tests/conftest.py


ARGS = ("--dataset", "digits", "--timesteps", "2", "--epochs", "2", "--limit", "64",
        "--val-limit", "16", "--test-limit", "16", "--no-progress")


def test_cli_stop_and_resume_gives_the_same_file(qblif, tmp_path):
    from qblif.training.slayer import load_network
    rc, _, err = qblif(*ARGS, "--out", str(tmp_path / "ref.net"))
    assert rc == 0, err
    assert not os.path.exists(tmp_path / "ref.ckpt")             # removed once written
    out = str(tmp_path / "m.net")
    rc, _, err = qblif(*ARGS, "--out", out, "--stop-after", "1e-9")
    assert rc == 3 and "--resume" in err and "Traceback" not in err
    assert sorted(os.listdir(tmp_path)) == ["m.ckpt"] + sorted(
        "ref" + s for s in (".json", ".md", ".net", ".png"))
    rc, _, err = qblif("--resume", str(tmp_path / "m.ckpt"), "--lr", "0.1", "--out", out)
    assert rc != 0 and "drop --lr" in err
    rc, _, err = qblif("--resume", str(tmp_path / "m.ckpt"), "--out", out, "--no-progress")
    assert rc == 0, err
    a, b = load_network(str(tmp_path / "ref.net")), load_network(out)
    assert _same(a.state_dict(), b.state_dict())
    assert not os.path.exists(tmp_path / "m.ckpt")
