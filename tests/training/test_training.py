"""Datasets, training determinism, the ``qblif train`` CLI and the shipped digits model."""
from __future__ import annotations

import gzip
import json
import os
import time

import numpy as np
import pytest

from qblif.core.data import FMNIST_ENV, load_dataset
from qblif.core.errors import DataError

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SHIPPED = os.path.join(ROOT, "netx_models", "digits_qblif_mlp.net")
FMNIST_INSTALLED = os.path.isfile("/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz")


# ----------------------------------------------------------------------------- data
def test_digits_splits():
    sizes = {}
    for split in ("train", "val", "test"):
        x, y = load_dataset("digits", split)
        assert x.dtype == np.float32 and y.dtype == np.int64
        assert x.ndim == 4 and x.shape[1:] == (1, 8, 8) and len(x) == len(y)
        assert 0.0 <= x.min() and x.max() <= 1.0 and x.max() == 1.0
        assert set(np.unique(y)) == set(range(10))
        sizes[split] = len(y)
    assert sum(sizes.values()) == 1797 and sizes["test"] == 359
    x1, _ = load_dataset("digits", "test")
    x2, y2 = load_dataset("digits", "test", limit=10)
    assert x2.shape == (10, 1, 8, 8) and np.array_equal(x1[:10], x2)


def test_unknown_dataset_and_split():
    with pytest.raises(DataError, match="digits, fashion-mnist"):
        load_dataset("mnist", "train")
    with pytest.raises(DataError, match="train, val, test"):
        load_dataset("digits", "dev")


def _idx(path, magic, dims, payload, compress=True):
    raw = magic.to_bytes(4, "big") + b"".join(int(d).to_bytes(4, "big") for d in dims) + payload
    if compress:
        with gzip.open(path, "wb") as f:
            f.write(raw)
    else:
        with open(path, "wb") as f:
            f.write(raw)


def _fake_fmnist(d, n_train=6003, n_test=5):
    rng = np.random.RandomState(0)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        _idx(d / f"{prefix}-images-idx3-ubyte.gz", 0x803, (n, 28, 28),
             rng.randint(0, 256, (n, 28, 28), dtype=np.uint8).tobytes())
        _idx(d / f"{prefix}-labels-idx1-ubyte.gz", 0x801, (n,),
             rng.randint(0, 10, n, dtype=np.uint8).tobytes())


def test_fmnist_from_tmp_dir(tmp_path, monkeypatch):
    _fake_fmnist(tmp_path)
    monkeypatch.setenv(FMNIST_ENV, str(tmp_path))
    x, y = load_dataset("fashion-mnist", "train")
    assert x.shape == (3, 1, 28, 28) and x.dtype == np.float32 and y.dtype == np.int64
    assert 0.0 <= x.min() and x.max() <= 1.0
    assert load_dataset("fashion-mnist", "val")[0].shape == (6000, 1, 28, 28)
    xt, yt = load_dataset("fashion-mnist", "test", root=str(tmp_path))
    assert xt.shape == (5, 1, 28, 28) and yt.shape == (5,)


def test_fmnist_missing(tmp_path, monkeypatch):
    monkeypatch.setenv(FMNIST_ENV, str(tmp_path / "nowhere"))
    with pytest.raises(DataError) as exc:
        load_dataset("fashion-mnist", "test")
    msg = str(exc.value)
    assert str(tmp_path / "nowhere" / "t10k-images-idx3-ubyte.gz") in msg
    assert "apt-get install dataset-fashion-mnist" in msg


@pytest.mark.parametrize("defect", ["magic", "size", "not-gzip", "truncated-gzip", "label"])
def test_fmnist_malformed(tmp_path, defect):
    _fake_fmnist(tmp_path, n_test=4)
    img = tmp_path / "t10k-images-idx3-ubyte.gz"
    lab = tmp_path / "t10k-labels-idx1-ubyte.gz"
    bad = img
    if defect == "magic":
        _idx(img, 0x802, (4, 28, 28), bytes(4 * 784))
    elif defect == "size":
        _idx(img, 0x803, (4, 28, 28), bytes(3 * 784))
    elif defect == "not-gzip":
        _idx(img, 0x803, (4, 28, 28), bytes(4 * 784), compress=False)
    elif defect == "truncated-gzip":
        data = img.read_bytes()
        img.write_bytes(data[:len(data) // 2])
    elif defect == "label":
        _idx(lab, 0x801, (4,), bytes([0, 1, 2, 12]))
        bad = lab
    with pytest.raises(DataError) as exc:
        load_dataset("fashion-mnist", "test", root=str(tmp_path))
    assert str(bad) in str(exc.value)


@pytest.mark.skipif(not FMNIST_INSTALLED, reason="dataset-fashion-mnist not installed")
def test_fmnist_installed():
    x, y = load_dataset("fashion-mnist", "test", limit=100)
    assert x.shape == (100, 1, 28, 28) and y.shape == (100,)
    assert len(load_dataset("fashion-mnist", "test")[1]) == 10000


# ----------------------------------------------------------------------------- training
def _cfg(**kw):
    from qblif.training.train import TrainConfig
    base = dict(dataset="digits", neuron="qblif", arch="mlp", timesteps=2, epochs=1, limit=96,
                val_limit=32, test_limit=32, threshold=2.0, progress=False)
    base.update(kw)
    return TrainConfig(**base)


@pytest.mark.parametrize("neuron", ["qblif", "cuba"])
def test_training_is_deterministic(neuron):
    import torch
    from qblif.training.train import train
    weights = []
    for seed in (3, 3, 4):
        model, res = train(_cfg(neuron=neuron, seed=seed), log=None)
        weights.append({k: v.clone() for k, v in model.state_dict().items()})
    assert weights[0].keys() == weights[1].keys()
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])
    assert not all(torch.equal(weights[0][k], weights[2][k]) for k in weights[0])


def test_relu_and_conv_build_and_stats():
    from qblif.training.train import train
    _, res = train(_cfg(neuron="relu", arch="conv"), log=None)
    assert res["synops_per_sample"] > 0 and res["spikes_per_neuron_step"] is None
    _, res = train(_cfg(neuron="cuba", arch="conv", limit=32), log=None)
    assert res["latency"] == 5 and res["simulated_steps"] == 7
    assert res["synops_per_sample"] >= 0 and 0 <= res["spikes_per_neuron_step"] <= 1


def test_fanout_map():
    import torch
    from lava.lib.dl.slayer.block import cuba
    from qblif.training.models import fanout_map, neuron_params
    p = neuron_params("cuba")
    conv = cuba.Conv(p, 2, 5, 3, padding=1)
    fo = fanout_map(conv, (2, 6, 6), nonzero=False)
    assert fo.shape == (2, 6, 6)
    assert fo[0, 2, 2] == 5 * 9 and fo[1, 0, 0] == 5 * 4 and fo[0, 0, 3] == 5 * 6
    with torch.no_grad():                 # synapses with a zero weight do not count
        conv.synapse.weight.fill_(1.0)
        conv.synapse.weight[1] = 0.0
    assert fanout_map(conv, (2, 6, 6))[0, 2, 2] == 4 * 9
    assert torch.all(fanout_map(cuba.Pool(p, 2), (3, 4, 4)) == 1)
    dense = cuba.Dense(p, 7, 11)
    with torch.no_grad():
        dense.synapse.weight.fill_(0.5)
        dense.synapse.weight[:, 3] = 0.0
    fo = fanout_map(dense, (7,))
    assert fo[3] == 0 and torch.all(fo[[0, 1, 2, 4, 5, 6]] == 11)
    assert fanout_map(cuba.Flatten(), (2, 3, 3)) is None


# ----------------------------------------------------------------------------- CLI
# the `qblif` fixture (the `train` sub-command's runner) is in tests/conftest.py


def _one_error_line(err, *needles):
    lines = [ln for ln in err.splitlines() if ln.startswith("qblif train: error:")]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    for n in needles:
        assert n in lines[0], lines[0]


@pytest.mark.parametrize("k", ["0", "256", "-1"])
def test_cli_bad_max_burst(qblif, tmp_path, k):
    rc, _, err = qblif("--dataset", "digits", "--max-burst", k, "--out", str(tmp_path / "m.net"))
    assert rc != 0
    _one_error_line(err, "--max-burst", "[1, 255]")


def test_cli_unknown_neuron(qblif, tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        qblif("--dataset", "digits", "--neuron", "izhikevich", "--out", str(tmp_path / "m.net"))
    assert exc.value.code == 2
    assert "invalid choice: 'izhikevich'" in capsys.readouterr().err


def test_cli_unknown_dataset(qblif, tmp_path):
    rc, _, err = qblif("--dataset", "cifar", "--out", str(tmp_path / "m.net"))
    assert rc != 0
    _one_error_line(err, "cifar", "digits, fashion-mnist")


def test_cli_missing_dataset(qblif, tmp_path, monkeypatch):
    monkeypatch.setenv(FMNIST_ENV, str(tmp_path / "empty"))
    t0 = time.perf_counter()
    rc, _, err = qblif("--dataset", "fashion-mnist", "--out", str(tmp_path / "m.net"))
    assert rc != 0 and time.perf_counter() - t0 < 20          # fails before training
    _one_error_line(err, "apt-get install dataset-fashion-mnist", str(tmp_path / "empty"))
    assert not os.path.exists(tmp_path / "m.net")


@pytest.mark.parametrize("where", ["no-dir", "is-dir"])
def test_cli_unwritable_out(qblif, tmp_path, where):
    out = tmp_path / "missing" / "m.net" if where == "no-dir" else tmp_path
    t0 = time.perf_counter()
    rc, _, err = qblif("--dataset", "digits", "--epochs", "50", "--out", str(out))
    assert rc != 0 and time.perf_counter() - t0 < 20          # checked before training
    _one_error_line(err, str(out))


def test_cli_trains_digits_to_90_percent(qblif, tmp_path):
    """The shipped recipe: QB-LIF mlp on digits, >= 90% test accuracy (quantized) in < 60 s;
    the exported file reproduces the card's accuracy."""
    out = tmp_path / "digits.net"
    t0 = time.perf_counter()
    rc, stdout, err = qblif("--dataset", "digits", "--neuron", "qblif", "--arch", "mlp",
                            "--timesteps", "4", "--max-burst", "4", "--epochs", "5", "--seed", "0",
                            "--no-progress", "--out", str(out))
    elapsed = time.perf_counter() - t0
    assert rc == 0, err
    assert elapsed < 60
    card = json.loads((tmp_path / "digits.json").read_text())
    assert (tmp_path / "digits.md").read_text().startswith("# digits.net")
    assert card["test_accuracy"] >= 0.90
    assert card["neuron"] == "qblif" and card["max_burst"] == 4 and card["epochs"] == 5
    assert card["synops_per_sample"] > 0 and 0 < card["spikes_per_neuron_step"] <= 4
    assert "test accuracy" in stdout
    assert _accuracy_of_file(str(out)) == pytest.approx(card["test_accuracy"])


def _accuracy_of_file(path):
    import torch
    from qblif.core.encoding import direct_encode, quantize_intensity
    from qblif.training.slayer import load_network, set_quantized
    net = set_quantized(load_network(path), True)
    x, y = load_dataset(net.dataset if isinstance(net.dataset, str) else "digits", "test")
    xi = quantize_intensity(x, net.input_bits).reshape(len(x), *net.input_shape)
    with torch.no_grad():
        out = net(torch.tensor(direct_encode(xi, net.timesteps + net.latency), dtype=torch.float32))
    return float((out.sum(-1).argmax(1).numpy() == y).mean())


@pytest.mark.skipif(not os.path.exists(SHIPPED), reason="digits model not shipped yet")
def test_shipped_digits_model():
    card = json.loads(open(SHIPPED[:-4] + ".json").read())
    assert card["test_accuracy"] >= 0.90 and card["neuron"] == "qblif"
    assert _accuracy_of_file(SHIPPED) == pytest.approx(card["test_accuracy"])
