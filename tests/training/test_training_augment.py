"""Data augmentation (random crop of the zero-padded image, horizontal flip; recorded in the
card, resumable) and the deeper ``deep`` conv architecture, which compiles and runs in Lava
with every spike equal to SLAYER's."""
from __future__ import annotations

import os
import signal

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from qblif.training import train as tr  # noqa: E402
from qblif.training.loop import augment  # noqa: E402
from qblif.training.models import describe  # noqa: E402


def test_flip_and_crop_move_pixels_only():
    torch.manual_seed(0)
    x = torch.arange(2 * 1 * 5 * 6, dtype=torch.float32).reshape(2, 1, 5, 6) + 1
    torch.manual_seed(1)
    y = augment(x, (1, 5, 6), crop_pad=0, hflip=True)
    for a, b in zip(x, y):
        assert torch.equal(b, a) or torch.equal(b, a.flip(-1))
    p = 2
    found = set()
    for seed in range(12):
        torch.manual_seed(seed)
        y = augment(x, (1, 5, 6), crop_pad=p)
        padded = torch.nn.functional.pad(x, (p, p, p, p))
        for a, b in zip(padded, y):
            offs = [(i, j) for i in range(2 * p + 1) for j in range(2 * p + 1)
                    if torch.equal(a[:, i:i + 5, j:j + 6], b)]
            assert offs, "not a crop of the padded image"
            found.add(offs[0])
    assert len(found) > 5                                # offsets vary
    flat = x.reshape(2, -1)                              # an mlp's flat input
    torch.manual_seed(3)
    yf = augment(flat, (1, 5, 6), crop_pad=1, hflip=True)
    torch.manual_seed(3)
    assert yf.shape == flat.shape
    assert torch.equal(yf, augment(x, (1, 5, 6), crop_pad=1, hflip=True).reshape(2, -1))


CFG = dict(dataset="digits", arch="conv", timesteps=2, epochs=2, limit=64, val_limit=16,
           test_limit=16, batch_size=32, crop_pad=1, hflip=True, progress=False)


def test_augmented_run_is_recorded_and_resumes_bit_identical(tmp_path):
    cfg = tr.TrainConfig(**CFG)
    ref, res = tr.train(cfg, log=None)
    plain, _ = tr.train(tr.TrainConfig(**dict(CFG, crop_pad=0, hflip=False)), log=None)
    assert any(not torch.equal(a, b) for a, b in zip(ref.state_dict().values(),
                                                     plain.state_dict().values()))
    assert res["config"]["crop_pad"] == 1 and res["config"]["hflip"] is True
    assert "random crop (zero padding 1 px), horizontal flip" in tr.card_markdown(
        dict(res, file="m.net"))
    ckpt = str(tmp_path / "a.ckpt")

    def hook(epoch, batch):
        if (epoch, batch) == (1, 0):
            os.kill(os.getpid(), signal.SIGINT)
    with pytest.raises(tr.TrainingStopped):
        tr.train(cfg, log=None, checkpoint=ckpt, on_batch=hook)
    again, _ = tr.train(cfg, log=None, resume=ckpt)
    sa, sb = ref.state_dict(), again.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)


def test_deep_arch_shapes():
    assert describe("fashion-mnist", "deep") == "1x28x28-32c3-32c3-p2-64c3-64c3-p2-256-10"
    assert describe("digits", "deep") == "1x8x8-8c3-8c3-p2-16c3-16c3-p2-64-10"
    with pytest.raises(tr.ConfigError, match="arch"):
        tr.check_config(tr.TrainConfig(arch="resnet"))


def test_deep_model_compiles_and_runs_in_lava_like_slayer(tmp_path):
    import qblif
    from qblif.verify import first_mismatch, slayer_counts
    cfg = tr.TrainConfig(dataset="digits", arch="deep", timesteps=3, epochs=1, limit=64,
                         val_limit=16, test_limit=16, threshold=0.5, progress=False)
    model, res = tr.train(cfg, log=None)
    assert res["latency"] == 8 and res["architecture"] == describe("digits", "deep")
    out = str(tmp_path / "deep.net")
    tr.write_outputs(model, cfg, res, out, curves=False)
    frames = np.random.default_rng(0).integers(0, 16, size=(2, 1, 8, 8))
    with qblif.compile(out, encoding="graded") as net:
        lava = net.run(frames, 3)
        want = slayer_counts(out, net.ir, frames, 3)
    assert len(want) == 8                                  # 4 conv, 2 pool, 2 dense
    assert sum(int(v.sum()) for v in want.values()) > 0
    assert first_mismatch(lava, want) is None
