"""A QB-LIF network exported by qblif.training.slayer compiles, and every layer's Lava counts equal
the SLAYER quantized forward (qblif.verify aligns the windows), in both encodings."""
from __future__ import annotations

import numpy as np
import pytest

import qblif
from qblif.verify import first_mismatch, slayer_counts

torch = pytest.importorskip("torch")
qslayer = pytest.importorskip("qblif.training.slayer")


def _export(path):
    from qblif.training.slayer import block as qb
    from qblif.training.slayer.hdf5 import export_network
    torch.manual_seed(0)

    def p(k, mode):
        return dict(threshold=0.5, current_decay=0.25, voltage_decay=0.03, max_burst=k,
                    reset_mode=mode, per_channel=True)
    blocks = [qb.Conv(p(3, "subtract"), 1, 3, 3, padding=1, weight_scale=3),
              qb.Pool(p(2, "zero"), 2), qb.Flatten(),
              qb.Dense(p(4, "subtract"), 3 * 4 * 4, 5, weight_scale=3)]
    x = torch.rand(1, 1, 8, 8, 2)
    for b in blocks:
        x = b(x)
    export_network(blocks, path, input_shape=(1, 8, 8), input_bits=4, timesteps=6)
    return path


@pytest.mark.parametrize("encoding", ["graded", "binary"])
def test_slayer_export_runs_identically_in_lava(tmp_path, encoding):
    path = _export(tmp_path / "q.net")
    frames = np.random.default_rng(0).integers(0, 16, size=(3, 1, 8, 8))
    steps = 6
    with qblif.compile(path, encoding=encoding) as net:
        out = net.run(frames, steps)
        want = slayer_counts(path, net.ir, frames, steps)
    assert sorted(want) == sorted(out) and len(want) == 3          # conv, pool, dense
    assert all(want[i].sum() > 0 for i in want), "a silent layer proves nothing"
    assert first_mismatch(out, want) is None


def test_cli_run_with_check(tmp_path, monkeypatch, capsys):
    import qblif.cli.main as cli
    pytest.importorskip("sklearn")
    path = _export(tmp_path / "q.net")
    rc = cli.main(["run", str(path), "--dataset", "digits", "--samples", "3", "--check"])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "accuracy:" in out and "check: every layer's counts equal" in out

    import qblif.verify as verify
    real = verify.slayer_counts

    def off_by_one(*a, **k):
        counts = real(*a, **k)
        counts[max(counts)][1, 2, 0] += 1
        return counts
    monkeypatch.setattr(verify, "slayer_counts", off_by_one)
    rc = cli.main(["run", str(path), "--dataset", "digits", "--samples", "3", "--check"])
    out = capsys.readouterr().out
    assert rc == 1
    assert "MISMATCH" in out and "sample 1, step 2, neuron (0,)" in out
