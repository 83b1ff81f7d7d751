"""Training configuration checks (documented ranges, D8), the CLI's wording of them, and
the one loaded-network adapter (``SpikingNet.from_network``)."""
from __future__ import annotations

import dataclasses
import os
import time

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from qblif.training import config as C  # noqa: E402
from qblif.training.config import ConfigError, TrainConfig, check_config  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DIGITS = os.path.join(ROOT, "netx_models", "digits_qblif_mlp.net")


@pytest.mark.parametrize("field, value", [
    ("current_decay", 2.0), ("current_decay", -1.0), ("current_decay", 0.0),
    ("voltage_decay", 1.0), ("voltage_decay", -0.5), ("threshold", 0.0),
    ("threshold", 2048.0), ("max_burst", 0), ("max_burst", 256), ("input_bits", 9),
    ("input_bits", 0), ("lr", float("nan")), ("loss_scale", 0.0), ("timesteps", 0),
    ("batch_size", 1.5), ("limit", 0), ("seed", -1), ("neuron", "izh"), ("arch", "resnet"),
    ("reset_mode", "hard"), ("cuba_impl", "cuda")])
def test_out_of_range_is_refused_naming_the_field(field, value):
    with pytest.raises(ConfigError) as exc:
        check_config(dataclasses.replace(TrainConfig(), **{field: value}))
    assert exc.value.field == field and str(exc.value).startswith(f"{field}=")
    assert "--" not in str(exc.value)                     # library wording, not CLI flags


def test_range_ends_are_accepted_and_come_from_params():
    from qblif.core.params import DECAY_RANGE, VTH_RANGE
    assert C.CURRENT_DECAY_RANGE == (1 / 4096, 1.0)
    assert C.VOLTAGE_DECAY_RANGE == (0.0, DECAY_RANGE[1] / 4096)
    assert C.THRESHOLD_RANGE == (VTH_RANGE[0] / 64, VTH_RANGE[1] / 64)
    for cd, vd, th in ((1 / 4096, 0.0, 1 / 64), (1.0, 4095 / 4096, (2 ** 17 - 1) / 64)):
        check_config(TrainConfig(current_decay=cd, voltage_decay=vd, threshold=th))
    check_config(TrainConfig(neuron="relu", threshold=0.0))   # no neuron fields for ReLU


# the `qblif` fixture (the `train` sub-command's runner) is in tests/conftest.py


@pytest.mark.parametrize("opt, value, needle", [
    ("--current-decay", "2", "--current-decay 2.0 is out of range: allowed [0.000244141, 1]"),
    ("--current-decay", "-1", "--current-decay -1.0 is out of range"),
    ("--voltage-decay", "1", "--voltage-decay 1.0 is out of range"),
    ("--input-bits", "12", "--input-bits 12 is out of range: allowed [1, 8]")])
def test_cli_refuses_before_training(qblif, tmp_path, opt, value, needle):
    t0 = time.perf_counter()
    rc, _, err = qblif("--dataset", "digits", "--epochs", "50", opt, value,
                       "--out", str(tmp_path / "m.net"))
    assert rc != 0 and time.perf_counter() - t0 < 20
    lines = [ln for ln in err.splitlines() if ln.startswith("qblif train: error:")]
    assert len(lines) == 1 and needle in lines[0] and "Traceback" not in err, err
    assert not os.listdir(tmp_path)


def test_card_records_what_the_export_holds(tmp_path):
    """A decay that is not a multiple of 1/4096: the card records the exported integers."""
    import h5py
    from qblif.training import train as tr
    cfg = TrainConfig(dataset="digits", timesteps=2, epochs=1, limit=32, val_limit=16,
                      test_limit=16, threshold=2.0, current_decay=0.3, voltage_decay=0.1,
                      progress=False)
    model, res = tr.train(cfg, log=None)
    out = str(tmp_path / "m.net")
    tr.write_outputs(model, cfg, res, out, curves=False)
    with h5py.File(out, "r") as f:
        i_decay = int(f["layer/0/neuron/iDecay"][()])
        v_decay = int(f["layer/0/neuron/vDecay"][()])
    assert res["device_params"] == {"iDecay": i_decay, "vDecay": v_decay}
    assert i_decay == round(0.3 * 4096) and v_decay == round(0.1 * 4096)
    assert f"exported iDecay {i_decay}" in (tmp_path / "m.md").read_text()


def test_loaded_network_adapter_is_the_network():
    """``SpikingNet.from_network`` wraps a loaded file's blocks as a full ``Network`` (its
    ``__init__`` ran: metadata, latency, forward equal to the loaded one)."""
    from qblif.training.slayer import load_network, set_quantized
    from qblif.training.slayer.hdf5 import Network
    from qblif.training.models import SpikingNet
    net = set_quantized(load_network(DIGITS), True)
    m = SpikingNet.from_network(net, "digits")
    assert isinstance(m, Network) and isinstance(m, SpikingNet)
    assert m.neuron == "qblif" and m.flat_input and m.input_shape == (64,) == net.input_shape
    assert m.timesteps == net.timesteps and m.input_bits == net.input_bits
    assert m.latency == net.latency == 2 and m.dataset == "digits"
    assert len(list(m.parameters())) == len(list(net.parameters()))
    x = torch.tensor(np.random.default_rng(0).integers(0, 16, (4, 64, 6)), dtype=torch.float32)
    with torch.no_grad():
        out, inputs = m(x, record=True)
        # windowed (each block on its own window) = the delayed run cut at the output's depth
        delayed = net(torch.cat([x, torch.zeros(4, 64, m.latency)], -1))[..., m.latency:]
        assert m.windowed and torch.equal(out, delayed) and len(inputs) == len(net.blocks)
