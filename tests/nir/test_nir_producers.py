"""NIR producers other than snnTorch (tests/nir/test_nir_snntorch.py): networks built in
Norse 1.1.0, written by its own exporter, compiled and run in Lava; Lava = the exact engine
= our oracle, and the agreement with Norse's own float simulation is measured per layer.
Skipped with the reason when Norse is not installed (test extra ``norse==1.1.0``).
Rockpool 3.1.0's ``to_nir`` cannot build a graph under nir 1.0.8 (type inference fails
on its batch dimension, docs/nir.md): nothing of Rockpool's to test yet."""
from __future__ import annotations

import numpy as np
import pytest

nir = pytest.importorskip("nir")
torch = pytest.importorskip("torch")
pytest.importorskip("norse.torch", reason="norse==1.1.0 is not installed (test extra)")

import qblif  # noqa: E402
from qblif.exact.oracle import forward  # noqa: E402
from qblif.ir import layers  # noqa: E402
from qblif.nir.simulate import agreement, simulate  # noqa: E402
import norse_nets as nn_  # noqa: E402


def test_norse_lifbox_mlp_exports_compiles_and_agrees(tmp_path):
    torch.manual_seed(0)
    model = nn_.mlp((16, 12, 5))
    with torch.no_grad():
        model[0].weight.mul_(2)                 # both layers spike
        model[2].weight.mul_(8)
        model[2].bias.fill_(0.5)
    path = tmp_path / "norse.nir"
    nn_.export(model, 16, path)
    rng = np.random.default_rng(6)
    frames = rng.integers(0, 16, (4, 16))
    steps = 10
    ref = dict(zip((0, 1), nn_.simulate(model, frames, steps)))
    ours = simulate(path, frames, steps, dt=nn_.NIR_DT)
    assert agreement(ours, ref) == {0: 1.0, 1: 1.0}          # Norse's semantics, exactly
    with qblif.compile(path, input_bits=4, nir_options=dict(dt=nn_.NIR_DT)) as net:
        assert [ly.kind for ly in layers(net.ir)] == ["dense", "dense"]
        lava = net.run(frames, steps)
        eng = net.run(frames, steps, engine="exact")
        oracle = forward(net.ir, frames, steps)
    for i in oracle:
        assert np.array_equal(lava[i], oracle[i]) and np.array_equal(eng[i], oracle[i])
    agree = agreement(lava, ref)
    assert min(agree.values()) >= 0.9, agree
    assert all(r.sum() > 5 for r in ref.values()), "a silent layer tests nothing"
