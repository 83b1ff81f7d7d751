"""A QB-LIF network exported by qblif_lava.slayer compiles, and its Lava output equals the
SLAYER quantized forward (delay_shift=True shows the counts delayed by the layer depth)."""
from __future__ import annotations

import numpy as np
import pytest

import compiler
from compiler.cli import slayer_view

torch = pytest.importorskip("torch")
qslayer = pytest.importorskip("qblif_lava.slayer")


def _export(path):
    from qblif_lava.slayer import block as qb
    from qblif_lava.slayer.hdf5 import export_network
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


def test_slayer_export_runs_identically_in_lava(tmp_path):
    from qblif_lava.encoding import direct_encode
    from qblif_lava.slayer.hdf5 import load_network
    path = _export(tmp_path / "q.net")
    frames = np.random.default_rng(0).integers(0, 16, size=(3, 1, 8, 8))
    steps = 6
    with compiler.compile(path, encoding="binary") as net:
        out = net.run(frames, steps)
        last = net.ir.nodes[net.output_index]["layer"]
    snet = load_network(path)
    with torch.no_grad():
        y = snet(torch.tensor(direct_encode(frames, steps), dtype=torch.float32))
    y = np.moveaxis(np.rint(y.numpy()).astype(np.int64), -1, 1)
    assert y.sum() > 0
    np.testing.assert_array_equal(slayer_view(out[net.output_index], last.depth), y)


def test_cli_run_with_check(tmp_path, monkeypatch, capsys):
    import qblif_lava.cli as cli
    pytest.importorskip("sklearn")
    path = _export(tmp_path / "q.net")
    monkeypatch.setattr(cli, "COMMAND_MODULES", ("compiler.cli",))
    rc = cli.main(["run", str(path), "--dataset", "digits", "--samples", "3", "--check"])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "accuracy:" in out and "check: Lava output counts equal" in out
