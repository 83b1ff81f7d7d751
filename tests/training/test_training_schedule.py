"""Learning-rate schedule, time budget, device checks, the QB-LIF blocks' one-step delay
(plain torch, so no lava-dl CUDA JIT is needed on a GPU) and ``qblif evaluate``."""
from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from qblif.core.errors import QblifError  # noqa: E402
from qblif.training import train as tr  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DIGITS = os.path.join(ROOT, "netx_models", "digits_qblif_mlp.net")


def test_cosine_schedule():
    cfg = tr.TrainConfig(lr=1e-2, lr_schedule="cosine")
    lrs = [tr.lr_at(cfg, e, 4) for e in range(1, 5)]
    assert lrs[0] == pytest.approx(1e-2)
    assert lrs == sorted(lrs, reverse=True) and lrs[-1] > 0
    assert lrs[2] == pytest.approx(1e-2 * 0.5 * (1 + np.cos(np.pi * 2 / 4)))
    assert tr.lr_at(cfg, 1, 1) == 1e-2
    const = tr.TrainConfig(lr=1e-2, lr_schedule="constant")
    assert {tr.lr_at(const, e, 4) for e in range(1, 5)} == {1e-2}


def test_plan_epochs():
    cfg = tr.TrainConfig(epochs=10, time_budget=100.0)
    assert tr.plan_epochs(cfg, elapsed=10.0, last_epoch=10.0) == 10     # 1 done + 9 fit
    assert tr.plan_epochs(cfg, elapsed=30.0, last_epoch=30.0) == 3      # 1 done + 2 fit
    assert tr.plan_epochs(cfg, elapsed=150.0, last_epoch=150.0) == 1    # over budget: stop
    assert tr.plan_epochs(tr.TrainConfig(epochs=7), 1e9, 1e9) == 7      # no budget


def _cfg(**kw):
    base = dict(dataset="digits", neuron="qblif", arch="mlp", timesteps=2, epochs=3, seed=0,
                limit=96, val_limit=32, test_limit=32, batch_size=32, threshold=2.0,
                loss_scale=0.25, progress=False)
    base.update(kw)
    return tr.TrainConfig(**base)


def test_time_budget_stops_mid_epoch_and_is_recorded():
    _, res = tr.train(_cfg(epochs=5, time_budget=1e-6), log=None)
    assert res["epochs"] == 1
    h = res["history"]
    assert len(h) == 1 and h[0]["samples"] == 32         # one batch, then out of time
    assert res["config"]["time_budget"] == 1e-6


def test_cosine_run_records_lr_per_epoch():
    _, res = tr.train(_cfg(epochs=3), log=None)
    lrs = [h["lr"] for h in res["history"]]
    assert len(lrs) == 3 and lrs[0] == pytest.approx(3e-3) and lrs[0] > lrs[1] > lrs[2]
    assert res["device"] == "CPU" and all(h["samples"] == 96 for h in res["history"])


@pytest.mark.parametrize("device, needle", [("meta", "not supported"), ("gpu:x", "invalid"),
                                            ("cuda:99", "CUDA")])
def test_bad_device(device, needle):
    if device == "cuda:99" and torch.cuda.is_available() and torch.cuda.device_count() > 99:
        pytest.skip("a machine with 100 GPUs")
    with pytest.raises(QblifError, match=needle):
        tr.check_config(_cfg(device=device))


@pytest.mark.parametrize("field, value, needle", [("lr_schedule", "step", "lr.schedule"),
                                                  ("time_budget", 0.0, "time.budget")])
def test_bad_schedule_args(field, value, needle):
    with pytest.raises(QblifError, match=needle):
        tr.check_config(_cfg(**{field: value}))


def test_lavadl_kernel_modules_resolve():
    """The modules whose ``Accelerated`` property JIT-builds lava-dl's CUDA kernels (the
    time package re-exports a *function* named ``shift``: resolved by module path)."""
    for name in tr.CUBA_KERNELS:
        mod = tr.kernel_module(name)
        assert "Accelerated" in vars(mod) and name in vars(mod.Accelerated), name
    with pytest.raises(ValueError, match="unknown kernel"):
        tr.kernel_module("resonator")


@pytest.mark.parametrize("persistent", [False, True])
def test_step_delay_equals_lavadl(persistent):
    """Our plain-torch one-step delay gives lava-dl's values and gradients (CPU), and the
    persistent-state carry of the last step into the next call (values only: lava-dl's own
    persistent delay cannot be differentiated, it writes into an autograd view)."""
    from lava.lib.dl.slayer.block.base import step_delay as lavadl_step_delay
    from qblif.training.slayer.block import step_delay

    class M(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.neuron = type("N", (), {"persistent_state": persistent})()

    ours, theirs = M(), M()
    g = torch.Generator().manual_seed(0)
    for _ in range(3):                                    # several calls: the carry
        x = torch.randn(2, 3, 4, 5, generator=g)
        if persistent:
            with torch.no_grad():
                assert torch.equal(step_delay(ours, x), lavadl_step_delay(theirs, x.clone()))
            continue
        xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
        ya, yb = step_delay(ours, xa), lavadl_step_delay(theirs, xb)
        assert torch.equal(ya, yb) and torch.equal(ya[..., 0], torch.zeros_like(ya[..., 0]))
        w = torch.randn(ya.shape, generator=g)
        (ya * w).sum().backward()
        (yb * w).sum().backward()
        assert torch.equal(xa.grad, xb.grad)


# ----------------------------------------------------------------------------- qblif evaluate
@pytest.fixture
def qblif(monkeypatch, capsys):
    from qblif.cli import main as cli
    monkeypatch.setattr(cli, "COMMAND_MODULES", ("qblif.cli.train",))
    capsys.readouterr()

    def run(*argv):
        rc = cli.main(list(argv))
        out, err = capsys.readouterr()
        return rc, out, err
    return run


def test_evaluate_reproduces_the_digits_card(qblif, tmp_path):
    card = json.load(open(DIGITS[:-4] + ".json"))
    net = tmp_path / "m.net"
    shutil.copy(DIGITS, net)
    shutil.copy(DIGITS[:-4] + ".json", tmp_path / "m.json")
    rc, out, err = qblif("evaluate", str(net))
    assert rc == 0, err
    assert f"{card['test_accuracy'] * 100:.2f}%" in out and "359" in out
    res = tr.evaluate_file(str(net))
    assert res["test_accuracy"] == pytest.approx(card["test_accuracy"], abs=1e-12)
    assert res["spikes_per_neuron_step"] == pytest.approx(card["spikes_per_neuron_step"])
    rc, out, err = qblif("evaluate", str(net), "--test-limit", "50", "--update-card")
    assert rc == 0, err
    new = json.loads((tmp_path / "m.json").read_text())
    assert new["test_samples"] == 50 and new["file"] == "m.net"
    assert (tmp_path / "m.md").read_text().startswith("# m.net")


def test_evaluate_bad_input(qblif, tmp_path):
    rc, _, err = qblif("evaluate", str(tmp_path / "missing.net"))
    assert rc != 0 and "does not exist" in err and "Traceback" not in err
    bad = tmp_path / "bad.net"
    bad.write_bytes(b"not hdf5")
    rc, _, err = qblif("evaluate", str(bad))
    assert rc != 0 and "bad.net" in err and "Traceback" not in err
    rc, _, err = qblif("evaluate", DIGITS, "--test-limit", "0")
    assert rc != 0 and "--test-limit" in err
