"""Untrusted files (issue 21): decompression and header bombs are refused before any read.

Each bomb is built here and given to the CLI in a child process; the child's peak memory is
its max RSS (``resource.getrusage(RUSAGE_CHILDREN)`` of a fresh wrapper process that only
runs the CLI), and must stay under ``PEAK_MB``. Before issue 21 the NIR bomb (a 37 KB file
whose gzip-compressed weight declares 3 x 250,000,000 float64) reached 5.95 GB, and the
lying ``.npy`` header gave a traceback (``_ArrayMemoryError``)."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

nir = pytest.importorskip("nir")

ROOT = Path(__file__).resolve().parents[2]
MODEL = ROOT / "netx_models" / "digits_qblif_mlp.net"
PEAK_MB = 300
BOMB_SHAPE = (3, 250_000_000)          # 6 GB of float64 once read
WRAPPER = ("import json, resource, subprocess, sys; "
           "r = subprocess.run(sys.argv[1:], capture_output=True, text=True); "
           "print(json.dumps([r.returncode, r.stderr, "
           "resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss]))")


def run_cli(*args, cwd) -> tuple:
    """``(exit code, stderr, peak RSS in MB)`` of ``python -m qblif.cli.main ARGS``."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    out = subprocess.run([sys.executable, "-c", WRAPPER, sys.executable, "-m",
                          "qblif.cli.main", *map(str, args)],
                         capture_output=True, text=True, env=env, cwd=cwd, timeout=300)
    rc, err, kb = json.loads(out.stdout)
    return rc, err, kb / 1024


def replace_with_bomb(f: h5py.File, key: str) -> None:
    """Replace dataset ``key`` by a gzip-compressed one declared as :data:`BOMB_SHAPE`
    float64 whose chunks were never written (HDF5 fills them with zeros when read)."""
    del f[key]
    f.create_dataset(key, shape=BOMB_SHAPE, dtype="f8", chunks=(1, 2 ** 20),
                     compression="gzip")


def assert_refused(rc, err, peak, *words):
    lines = err.strip().splitlines()
    assert rc == 2, err[-2000:]
    assert len(lines) == 1 and "Traceback" not in err, err[-2000:]
    for w in words:
        assert w in lines[0], lines[0]
    assert peak < PEAK_MB, f"peak RSS {peak:.0f} MB"


def test_nir_decompression_bomb_is_refused_before_reading(tmp_path):
    path = tmp_path / "bomb.nir"
    g = nir.NIRGraph(nodes={"in": nir.Input(input_type={"input": np.array([3])}),
                            "fc": nir.Linear(weight=np.ones((3, 3))),
                            "out": nir.Output(output_type={"output": np.array([3])})},
                     edges=[("in", "fc"), ("fc", "out")], type_check=False)
    nir.write(str(path), g)
    with h5py.File(path, "r+") as f:
        replace_with_bomb(f, "node/nodes/fc/weight")
    assert path.stat().st_size < 100_000
    assert_refused(*run_cli("compile", path, cwd=tmp_path),
                   "NIR node 'fc' key 'weight'", "3 x 250,000,000 float64", "too large")


def test_netx_decompression_bomb_is_refused_before_reading(tmp_path):
    path = tmp_path / "bomb.net"
    shutil.copy(MODEL, path)
    with h5py.File(path, "r+") as f:
        replace_with_bomb(f, "layer/1/weight")
    assert_refused(*run_cli("compile", path, cwd=tmp_path),
                   "layer 1 key 'weight'", "750,000,000 elements")


def _npy_with_header(path: Path, shape, dtype="<i8", data=b"\0" * 800) -> None:
    header = {"descr": dtype, "fortran_order": False, "shape": shape}
    with open(path, "wb") as f:
        np.lib.format.write_array_header_1_0(f, header)
        f.write(data)


@pytest.mark.parametrize("shape, words", [((200_000_000, 64), "more than the limit"),
                                          ((10_000, 64), "but 800 bytes follow it")])
def test_npy_whose_header_lies_is_refused_before_reading(tmp_path, shape, words):
    path = tmp_path / "x.npy"
    _npy_with_header(path, shape)
    assert path.stat().st_size < 1024
    assert_refused(*run_cli("run", MODEL, "--input", path, "--engine", "exact",
                            cwd=tmp_path), str(path), words)


def test_npy_checks_in_process(tmp_path):
    from qblif.core.errors import InputFileError
    from qblif.core.npyfile import load_npy
    good = tmp_path / "good.npy"
    np.save(good, np.arange(12, dtype=np.int16).reshape(3, 4))
    assert load_npy(str(good)).tolist() == np.arange(12).reshape(3, 4).tolist()
    fortran = tmp_path / "f.npy"
    np.save(fortran, np.asfortranarray(np.arange(6.0).reshape(2, 3)))
    assert load_npy(str(fortran)).tolist() == np.arange(6.0).reshape(2, 3).tolist()
    for name, shape, dtype in [("obj", (2,), "|O"), ("neg", (-4, 2), "<i8"),
                               ("short", (101,), "<i8")]:
        p = tmp_path / f"{name}.npy"
        _npy_with_header(p, shape, dtype)
        with pytest.raises(InputFileError, match=str(p)):
            load_npy(str(p))


def _io(n=3):
    return {"in": nir.Input(input_type={"input": np.array([n])}),
            "out": nir.Output(output_type={"output": np.array([n])})}


def test_nir_cycle_through_no_neuron_and_deep_nesting_are_one_line():
    from qblif.core.errors import CompileError
    from qblif.nir.graph import chain
    loop = nir.NIRGraph(nodes=dict(_io(), a=nir.Linear(weight=np.eye(3)),
                                   b=nir.Linear(weight=np.eye(3))),
                        edges=[("in", "a"), ("a", "b"), ("b", "a"), ("b", "out")],
                        type_check=False)
    with pytest.raises(CompileError, match="a cycle through no neuron"):
        chain(loop)
    g = nir.NIRGraph(nodes=dict(_io(), fc=nir.Linear(weight=np.eye(3))),
                     edges=[("in", "fc"), ("fc", "out")], type_check=False)
    for _ in range(40):
        g = nir.NIRGraph(nodes=dict(_io(), sub=g), edges=[("in", "sub"), ("sub", "out")],
                         type_check=False)
    with pytest.raises(CompileError, match="nested more than 32 levels deep"):
        chain(g)


def test_hdf5_links_that_loop_or_leave_the_file_are_refused(tmp_path):
    from qblif.core.errors import ModelFileError
    from qblif.core.hdf5_limits import check_hdf5
    loop, ext = tmp_path / "loop.h5", tmp_path / "ext.h5"
    with h5py.File(loop, "w") as f:
        sub = f.create_group("layer/0")
        sub["again"] = f["layer"]                   # a hard link to its parent: a cycle
    with pytest.raises(ModelFileError, match="nested more than"):
        check_hdf5(str(loop))
    with h5py.File(ext, "w") as f:
        f["layer/0/weight"] = h5py.ExternalLink("/etc/passwd", "/x")
    with pytest.raises(ModelFileError, match="layer 0 key 'weight': an external link"):
        check_hdf5(str(ext))
