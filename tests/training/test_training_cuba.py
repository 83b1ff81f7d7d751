"""CUBA through our plain-torch blocks (``cuba_impl="qblif"``: QB-LIF with K = 1, reset zero,
fixed threshold): the forward of a whole network equals lava-dl's CUBA network with the
same weights, and a trained model exports and reloads to the same forward."""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from qblif.training import train as tr  # noqa: E402


@pytest.mark.parametrize("arch", ["mlp", "conv"])
def test_our_cuba_network_equals_lavadl_cuba(arch):
    kw = dict(dataset="digits", neuron="cuba", arch=arch, threshold=1.25, current_decay=0.25,
              voltage_decay=0.5)
    torch.manual_seed(0)
    theirs = tr.make_model(tr.TrainConfig(**kw, cuba_impl="lava-dl"))
    ours = tr.make_model(tr.TrainConfig(**kw, cuba_impl="qblif"))
    assert type(ours.blocks[0]).__module__.startswith("qblif.training.slayer")
    assert type(theirs.blocks[0]).__module__.startswith("lava.lib.dl")
    with torch.no_grad():
        for a, b in zip(theirs.blocks, ours.blocks):
            if getattr(a, "synapse", None) is not None:
                b.synapse.weight.copy_(a.synapse.weight * 4)     # strong enough to spike
                a.synapse.weight.copy_(a.synapse.weight * 4)
    tr.set_quantized(ours, False)                                 # CUBA stays quantized
    n = ours.blocks[0].neuron
    assert n.max_burst == 1 and n.reset_mode == "zero" and not n.threshold_param.requires_grad
    assert n.quantized
    from qblif.core.data import load_dataset
    x, _ = load_dataset("digits", "test", 8)
    xb = tr.encode(ours, x, 4)
    # ours is windowed (each block on its own 6-step window, no delay); lava-dl's blocks run
    # 6 + latency steps, each adding one step of delay: block j's window starts at its depth
    steps = tr.sim_steps(ours, 6)
    assert ours.windowed and steps == 6 and tr.sim_steps(theirs, 6) == 6 + theirs.latency
    with torch.no_grad():
        yt, rt = theirs(xb.unsqueeze(-1).expand(*xb.shape, 6 + theirs.latency).contiguous(),
                        record=True)
        yo, ro = ours(xb.unsqueeze(-1).expand(*xb.shape, steps).contiguous(), record=True)
    depth = 0
    for blk, a, b in zip(theirs.blocks, rt[1:] + [yt], ro[1:] + [yo]):
        depth += 1 if getattr(blk, "delay_shift", False) else 0
        assert torch.equal(a[..., depth:depth + steps], b)
    assert yt.sum() > 0 and sum(float(t.sum()) for t in rt[1:]) > 0   # spikes happen


def test_train_cuba_through_our_path_exports_and_reloads(tmp_path):
    from qblif.training.slayer import load_network
    cfg = tr.TrainConfig(dataset="digits", neuron="cuba", cuba_impl="qblif", timesteps=2,
                         epochs=1, limit=64, val_limit=16, test_limit=32, threshold=2.0,
                         progress=False)
    model, res = tr.train(cfg, log=None)
    assert res["neuron"] == "cuba" and res["max_burst"] == 1
    assert set(res["thresholds"].values()) == {2.0}                  # fixed threshold
    out = str(tmp_path / "c.net")
    tr.write_outputs(model, cfg, res, out, curves=False)
    net = load_network(out)
    assert all(getattr(b.neuron, "max_burst", 1) == 1 and b.neuron.reset_mode == "zero"
               for b in net.blocks if getattr(b, "neuron", None) is not None)
    again = tr.evaluate_file(out, card={"dataset": "digits"}, test_limit=32)
    assert again["test_accuracy"] == res["test_accuracy"]
    assert "K = 1 and reset zero" in (tmp_path / "c.md").read_text()
