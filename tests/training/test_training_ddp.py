"""Data-parallel training (torchrun, DistributedDataParallel, gloo on CPU): two processes
give the weights of one process with the same global batch; only rank 0 writes; a DDP run
stopped inside an epoch resumes to the same weights; ``qblif train --nproc 2``."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

torch = pytest.importorskip("torch")
if not torch.distributed.is_available():
    pytest.skip("torch.distributed is not available", allow_module_level=True)

from qblif.training import train as tr  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CFG = dict(dataset="digits", neuron="qblif", arch="mlp", timesteps=2, epochs=2, limit=96,
           val_limit=32, test_limit=32, batch_size=32, threshold=2.0, loss_scale=0.25,
           progress=False)
CLI_ARGS = ["--dataset", "digits", "--timesteps", "2", "--epochs", "2", "--limit", "96",
            "--val-limit", "32", "--test-limit", "32", "--threshold", "2.0", "--no-progress"]


def _env():
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""),
               QBLIF_TEST_CFG=json.dumps(CFG), OMP_NUM_THREADS="1")
    return env


def _torchrun(*args, cwd):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone",
           "--nproc-per-node=2", *args]
    return subprocess.run(cmd, cwd=cwd, env=_env(), capture_output=True, text=True, timeout=600)


def _driver(mode, d):
    return _torchrun(os.path.join(ROOT, "tests", "training_ddp_driver.py"), mode, str(d), cwd=d)


def _qblif_train(*args, cwd):
    return subprocess.run([sys.executable, "-m", "qblif.cli.main", "train", *args], cwd=cwd,
                          env=_env(), capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def cli_dir(tmp_path_factory):
    """qblif train --nproc 2: uninterrupted, through the CLI."""
    d = tmp_path_factory.mktemp("cli")
    r = _qblif_train(*CLI_ARGS, "--nproc", "2", "--out", str(d / "m.net"), cwd=d)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "on 2 processes" in r.stdout
    return d


def test_ddp_equals_one_process_rank0_writes_and_resumes(tmp_path, cli_dir):
    card = json.loads((cli_dir / "m.json").read_text())
    assert card["world_size"] == 2 and "2 processes (DDP)" in (cli_dir / "m.md").read_text()
    assert sorted(os.listdir(cli_dir)) == ["m.json", "m.md", "m.net", "m.png"]

    # stopped inside epoch 2 (SIGINT on rank 0 stops both), then resumed
    d = tmp_path / "drv"
    d.mkdir()
    r = _driver("stop", d)
    assert r.returncode != 0 and os.path.exists(d / "ddp.ckpt"), r.stderr[-3000:]
    r = _driver("resume", d)
    assert r.returncode == 0, r.stderr[-3000:]
    for mode in ("stop", "resume"):          # only rank 0 wrote (checkpoints, model, card)
        assert json.loads((d / f"writes.rank1.{mode}.json").read_text()) == []
        assert str(d / "ddp.ckpt") in json.loads((d / f"writes.rank0.{mode}.json").read_text())
    assert str(d / "ddp.net") in json.loads((d / "writes.rank0.resume.json").read_text())

    from qblif.training.slayer import load_network
    a, b = load_network(str(cli_dir / "m.net")), load_network(str(d / "ddp.net"))
    sa, sb = a.state_dict(), b.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)          # resumed DDP == uninterrupted DDP
    w0 = torch.load(d / "weights.rank0.pt")
    w1 = torch.load(d / "weights.rank1.pt")
    assert all(torch.equal(w0[k], w1[k]) for k in w0)           # the ranks agree

    # one process, the same global batch: the same weights within float tolerance
    model, _ = tr.train(tr.TrainConfig(**CFG), log=None)
    single = model.state_dict()
    for k in single:
        assert torch.allclose(single[k], w0[k], rtol=1e-4, atol=1e-5), k
    assert any(not torch.equal(single[k], torch.zeros_like(single[k])) for k in single)


def test_cli_ddp_stop_is_one_line_and_resumes(tmp_path, cli_dir):
    out = str(tmp_path / "s.net")
    r = _qblif_train(*CLI_ARGS, "--nproc", "2", "--out", out, "--stop-after", "1e-9", cwd=tmp_path)
    assert r.returncode == 3, r.stderr[-3000:]
    errors = [ln for ln in r.stderr.splitlines() if "error" in ln.lower()]
    assert len(errors) == 1 and "--resume" in errors[0], r.stderr[-3000:]
    assert "Traceback" not in r.stderr and "ChildFailedError" not in r.stderr
    assert os.listdir(tmp_path) == ["s.ckpt"]
    r = _qblif_train("--resume", str(tmp_path / "s.ckpt"), "--nproc", "2", "--out", out,
                     "--no-progress", cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    from qblif.training.slayer import load_network
    a, b = load_network(str(cli_dir / "m.net")), load_network(out)
    sa, sb = a.state_dict(), b.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert json.loads((tmp_path / "s.json").read_text())["resumed"] == 1
