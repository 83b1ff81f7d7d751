"""Issue 10, in-process: the run API's argument checks (D10), ``predict``, the pre-flight
host estimate (D11), one validation for every NetX reader (D1) and the CLI's help (D9)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

import qblif
from qblif.netx.check import ModelFileError
from test_compiler_errors import CASES, _edit, _valid
from test_compiler_writer import conv_net, write_net

ROOT = Path(__file__).resolve().parents[2]
MODEL = ROOT / "netx_models" / "digits_qblif_mlp.net"


@pytest.fixture(scope="module")
def digits():
    with qblif.compile(MODEL) as net:
        yield net


def _frames(n=6):
    from qblif.core.data import load_dataset
    from qblif.core.encoding import quantize_intensity
    x, y = load_dataset("digits", "test", limit=n)
    return quantize_intensity(x, 4), y          # (n, 1, 8, 8): the loader's shape


# ------------------------------------------------------------------ D10: the run API
@pytest.mark.parametrize("steps", [2.7, 2.0, "4", True, None])
def test_steps_per_sample_must_be_an_int(digits, steps):
    frames, _ = _frames(1)
    with pytest.raises(TypeError, match="steps_per_sample.*must be an int"):
        digits.run(frames, steps)


@pytest.mark.parametrize("steps", [0, -3])
def test_steps_per_sample_must_be_positive(digits, steps):
    with pytest.raises(ValueError, match="must be >= 1"):
        digits.run(_frames(1)[0], np.int64(steps))


@pytest.mark.parametrize("record", [[99], [0, 99], [], ["x"]])
def test_unknown_layers_to_record_raise(digits, record):
    with pytest.raises(ValueError, match="layers_to_record"):
        digits.run(_frames(1)[0], 2, layers_to_record=record)


def test_loader_shaped_frames_run_and_predict_returns_labels(digits):
    """``(N, 1, 8, 8)`` frames (the dataset loader's shape) for the ``(64,)`` model give the
    same counts as the flat frames; ``predict`` returns the labels ``qblif run`` computes."""
    frames, labels = _frames(6)
    last = digits.output_index
    a = digits.run(frames, 4, layers_to_record=[last])[last]
    b = digits.run(frames.reshape(6, 64), 4, layers_to_record=[last])[last]
    np.testing.assert_array_equal(a, b)
    pred = digits.predict(frames)
    assert pred.shape == (6,) and pred.dtype.kind == "i"
    np.testing.assert_array_equal(pred, a.sum(axis=1).argmax(axis=1))
    assert (pred == labels).mean() >= 0.8          # the shipped model: 96% on digits


def test_ambiguous_frame_layout_is_refused_with_how_to_reshape(tmp_path):
    specs, shape = conv_net(np.random.default_rng(0))          # input (2, 6, 6)
    with qblif.compile(write_net(tmp_path / "c.net", specs, shape)) as net:
        for frames in (np.zeros((3, 6, 6, 2), int), np.zeros((3, 72), int)):
            with pytest.raises(ValueError, match=r"reshape\(\(len\(frames\),\) \+ "
                                                 r"net.input_shape\)"):
                net.check_frames(frames)
        assert net.check_frames(np.zeros((3, 1, 2, 6, 6), int)).shape == (3, 2, 6, 6)
        with pytest.raises(ValueError, match=r"expected \(samples, 2, 6, 6\)"):
            net.check_frames(np.zeros((3, 50), int))


def test_cli_refuses_steps_zero(capsys):
    from qblif.cli import main as cli
    assert cli.main(["run", str(MODEL), "--dataset", "digits", "--steps", "0"]) == 1
    assert "--steps=0 must be >= 1" in capsys.readouterr().err


# ------------------------------------------------------------------ D12: per-cycle memory
def test_a_run_leaves_nothing_in_lavas_global_registries(digits):
    """Lava's ProcessServer/VarServer keep every process and Var, and every process adds a
    root-logger handler: a finished run's graph must not stay reachable from them."""
    import logging

    from lava.magma.core.process.process import ProcessServer
    from lava.magma.core.process.variable import VarServer
    frames, _ = _frames(1)
    digits.run(frames, 2)                      # the first run may add the one kept handler
    before = (len(ProcessServer().processes), len(VarServer().vars),
              len(logging.getLogger().handlers))
    for _ in range(2):
        digits.run(frames, 2)
    assert (len(ProcessServer().processes), len(VarServer().vars),
            len(logging.getLogger().handlers)) == before


# ------------------------------------------------------------------ D11: host estimate
def test_host_estimate_counts_the_processes_a_run_starts(digits):
    from qblif.passes.resources import RUNTIME_PROCESSES
    frames, _ = _frames(2)
    for record, uv in ((None, False), ([digits.output_index], False), (None, True)):
        est = digits.host_estimate(2, 3, record, uv)
        digits.run(frames, 3, layers_to_record=record, record_uv=uv)
        assert est["processes"] == digits.last_run["processes"] + RUNTIME_PROCESSES
        assert digits.last_run["host_estimate"]["processes"] == est["processes"]
    assert "Lava CPU estimate: " in digits.report()


def test_host_limits_refuse_unless_forced(digits, monkeypatch):
    from qblif.core.errors import ResourceLimitError
    from qblif.passes import resources
    monkeypatch.setattr(resources, "MAX_PROCESSES", 5)
    est = digits.host_estimate(1, 2)
    with pytest.raises(ResourceLimitError, match=r"9 OS processes > 5.*--force"):
        resources.check_host_estimate(est)
    resources.check_host_estimate(est, force=True)
    assert ResourceLimitError.exit_code == 2


# ------------------------------------------------------------------ D1: every reader
COMPILER_ONLY = {4, 21}   # 'average' layers, odd mixed-sign weights: chip limits, not file errors


@pytest.mark.parametrize("case", [i for i in range(len(CASES)) if i not in COMPILER_ONLY])
def test_load_network_refuses_what_the_compiler_refuses(tmp_path, case):
    """The compiler's malformed-file cases, through ``qblif.training.slayer.load_network`` (the
    reader of ``qblif evaluate`` and ``qblif.verify``): the same one-line ModelFileError."""
    from qblif.training.slayer import load_network
    edit, layer, key = CASES[case]
    path = _valid(tmp_path)
    try:
        _edit(path, edit)
    except KeyError:
        with h5py.File(path, "r+") as f:
            cell = dict(zip(edit.__code__.co_freevars, (c.cell_contents for c in edit.__closure__)))
            f.create_dataset(cell["key"], data=cell["value"])
    with pytest.raises(ModelFileError) as exc:
        load_network(path)
    assert "\n" not in str(exc.value) and exc.value.exit_code == 2
    if key is not None and case not in (2,):        # a missing 'type' reads as type 'none'
        assert key in str(exc.value), str(exc.value)


@pytest.mark.parametrize("key,value,fragment", [
    ("qblif/timesteps", 10 ** 9, "timesteps=1000000000 is out of range"),
    ("qblif/inputShape", np.array([0]), "inputShape"),
    ("layer/1/weight", np.full((5, 6), np.inf), "NaN or infinity"),
])
def test_every_reader_refuses_absurd_metadata_and_values(tmp_path, key, value, fragment):
    from qblif.training.slayer import load_network
    path = _valid(tmp_path)
    with h5py.File(path, "r+") as f:
        if key in f:
            del f[key]
        f.create_dataset(key, data=value)
    with pytest.raises(ModelFileError, match=fragment):
        load_network(path)
    with pytest.raises(qblif.CompileError, match=fragment):
        qblif.compile(path)


# ------------------------------------------------------------------ D9: help
def _fresh_python(code: str, timeout: int = 120) -> subprocess.CompletedProcess:
    """``code`` run by a fresh interpreter with only the project on its path."""
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                          env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
                          timeout=timeout)


def test_top_level_help_imports_nothing_heavy():
    code = ("import sys\nfrom qblif.cli import main as cli\n"
            "try:\n    cli.main(['--help'])\nexcept SystemExit:\n    pass\n"
            "heavy = [m for m in ('numpy', 'torch', 'lava', 'h5py', 'compiler')\n"
            "         if m in sys.modules]\n"
            "print('HEAVY', heavy)\n")
    out = _fresh_python(code)
    assert "HEAVY []" in out.stdout, out.stdout + out.stderr
    for name in ("demo", "train", "evaluate", "compile", "run"):
        assert f"    {name} " in out.stdout


@pytest.mark.parametrize("command", ["train", "evaluate"])
def test_train_and_evaluate_help_import_neither_torch_nor_lava_dl(command):
    """qblif.training imports nothing itself; its CLI module needs neither."""
    code = ("import sys\nfrom qblif.cli import main as cli\n"
            f"try:\n    cli.main([{command!r}, '--help'])\nexcept SystemExit:\n    pass\n"
            "print('HEAVY', [m for m in ('torch', 'lava.lib.dl', 'lava.magma') "
            "if m in sys.modules])\n")
    out = _fresh_python(code)
    assert "HEAVY []" in out.stdout, out.stdout + out.stderr
    assert f"example: qblif {command}" in " ".join(out.stdout.split())


def test_evaluate_through_the_exact_engine_does_not_import_lava_dl():
    """lava-dl and the training loop took 2 CPU s of ``qblif evaluate`` (docs/exact_engine.md)."""
    code = ("import sys\nfrom qblif.cli import main as cli\n"
            f"rc = cli.main(['evaluate', {str(ROOT / 'netx_models' / 'digits_qblif_mlp.net')!r}, "
            "'--test-limit', '20'])\n"
            "print('RC', rc, [m for m in ('lava.lib.dl', 'qblif.training.train') "
            "if m in sys.modules])\n")
    out = _fresh_python(code, timeout=300)
    assert "RC 0 []" in out.stdout, out.stdout + out.stderr
    assert "test accuracy" in out.stdout


@pytest.mark.parametrize("command", ["compile", "run"])
def test_subcommand_help_has_description_defaults_and_example(command, capsys):
    from qblif.cli import main as cli
    with pytest.raises(SystemExit):
        cli.main([command, "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "example: qblif " + command in text
    assert "NetX HDF5" in text
    assert "(default: graded)" in text
