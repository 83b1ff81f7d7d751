"""File mutations for the untrusted-file fuzz test (tests/cli/test_fuzz_files.py) and soak
(bench/bench_fuzz_soak.py): NetX and NIR HDF5 files, ``.npy`` headers and checkpoints.

A case is ``(kind, op, index, seed)``: ``kind`` one of :data:`KINDS`, ``op`` a mutation of
:data:`HDF5_OPS` (``.npy``: :data:`NPY_OPS`; checkpoints: :data:`CKPT_OPS`), ``index`` picks
the dataset or key, ``seed`` the random values. :func:`make_case` writes the mutated file;
:func:`read_case` reads it the way the CLI does and returns ``"ok"`` or ``"refused"`` (a
``QblifError`` whose exit code is 2, one line); anything else propagates (a fuzz failure).
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
NETX_MODEL = ROOT / "netx_models" / "digits_qblif_mlp.net"
KINDS = ("netx", "nir", "npy", "ckpt")
HDF5_OPS = ("shape", "dtype", "nan", "inf", "big", "delete", "extra", "group", "string",
            "truncate", "flip", "scalar")
NPY_OPS = ("shape", "descr", "fortran", "negative", "short", "long", "garbage", "huge")
CKPT_OPS = ("truncate", "flip", "drop", "retype", "version", "tensor")
OPS = {"netx": HDF5_OPS, "nir": HDF5_OPS, "npy": NPY_OPS, "ckpt": CKPT_OPS}


def base_files(directory: Path) -> dict:
    """Write the unmutated files once: ``{kind: path}``."""
    import h5py  # noqa: F401
    from qblif.export.nir import export_nir
    directory.mkdir(parents=True, exist_ok=True)
    net = directory / "base.net"
    shutil.copy(NETX_MODEL, net)
    nir_path = directory / "base.nir"
    export_nir(str(net), str(nir_path))
    npy = directory / "base.npy"
    np.save(npy, np.random.RandomState(0).randint(0, 16, (2, 64)).astype(np.int64))
    return {"netx": net, "nir": nir_path, "npy": npy, "ckpt": _base_checkpoint(directory)}


def _base_checkpoint(directory: Path) -> Path:
    path = directory / "base.ckpt"
    try:
        import torch
        from qblif.training.checkpoint import save_checkpoint
    except ImportError:
        return path
    save_checkpoint(str(path), {
        "config": {"dataset": "digits", "lr": 0.003}, "world_size": 1,
        "model": {"w": torch.zeros(3, 4)}, "optimizer": {"state": {}, "param_groups": []},
        "generator": torch.Generator().get_state(), "rng": [{"torch": torch.get_rng_state()}],
        "state": {k: 0 for k in ("epoch", "planned", "history", "best_val", "best_state",
                                 "epoch_times", "elapsed", "resumed")}, "position": None})
    return path


def _datasets(path: Path) -> list:
    import h5py
    names = []
    with h5py.File(path, "r") as f:
        f.visititems(lambda n, o: names.append(n) if isinstance(o, h5py.Dataset) else None)
    return sorted(names)


def make_case(base: dict, kind: str, op: str, index: int, seed: int, out: Path) -> Path:
    """Write the mutated file of case ``(kind, op, index, seed)`` to ``out``."""
    shutil.copy(base[kind], out)
    rng = np.random.RandomState(seed)
    if kind in ("netx", "nir"):
        _mutate_hdf5(out, op, index, rng)
    elif kind == "npy":
        _mutate_npy(out, op, rng)
    else:
        _mutate_ckpt(out, op, index, rng)
    return out


def _mutate_bytes(path: Path, op: str, rng) -> None:
    data = bytearray(path.read_bytes())
    if op == "truncate":
        data = data[:rng.randint(0, len(data))]
    else:
        for i in rng.randint(0, len(data), size=rng.randint(1, 16)):
            data[i] ^= 1 << rng.randint(0, 8)
    path.write_bytes(bytes(data))


def _mutate_hdf5(path: Path, op: str, index: int, rng) -> None:
    import h5py
    if op in ("truncate", "flip"):
        return _mutate_bytes(path, op, rng)
    keys = _datasets(path)
    key = keys[index % len(keys)]
    with h5py.File(path, "r+") as f:
        old = f[key][()]
        arr = np.asarray(old)
        if op == "delete":
            del f[key]
            return
        if op == "extra":
            f[f"{key}_extra{rng.randint(100)}"] = rng.randn(*rng.randint(1, 4, size=2))
            return
        del f[key]
        if op == "shape":
            f[key] = rng.randint(-3, 300, size=tuple(rng.randint(0, 5, size=rng.randint(0, 4))))
        elif op == "dtype":
            dt = ["i1", "u2", "f2", "f4", "?", "c8", "S3"][rng.randint(7)]
            f[key] = arr.astype(dt) if arr.dtype.kind in "biuf" else np.zeros(arr.shape, dt)
        elif op in ("nan", "inf", "big"):
            val = {"nan": np.nan, "inf": -np.inf if rng.randint(2) else np.inf,
                   "big": 10.0 ** rng.randint(5, 300)}[op]
            new = np.array(arr, dtype=np.float64) if arr.dtype.kind in "biuf" else np.zeros(3)
            new.reshape(-1)[rng.randint(max(new.size, 1))] = val if new.size else val
            f[key] = new
        elif op == "group":
            f.create_group(key)
        elif op == "string":
            f[key] = np.bytes_("x" * rng.randint(0, 40))
        elif op == "scalar":
            f[key] = rng.randint(-5, 5)


def _mutate_npy(path: Path, op: str, rng) -> None:
    arr = np.load(path)
    header = {"descr": arr.dtype.str, "fortran_order": False, "shape": arr.shape}
    data = arr.tobytes()
    if op == "shape":
        header["shape"] = tuple(int(x) for x in rng.randint(0, 200, size=rng.randint(0, 4)))
    elif op == "descr":
        header["descr"] = ["|O", "<U3", "|V8", "<c16", "|b1", "<f2", "<u8"][rng.randint(7)]
    elif op == "fortran":
        header["fortran_order"] = True
    elif op == "negative":
        header["shape"] = (-int(rng.randint(1, 100)), 64)
    elif op == "short":
        data = data[:rng.randint(0, len(data))]
    elif op == "long":
        data = data + bytes(rng.randint(1, 100))
    elif op == "huge":
        header["shape"] = (int(rng.randint(10 ** 6, 10 ** 9)), 64)
    with open(path, "wb") as f:
        if op == "garbage":
            f.write(b"\x93NUMPY\x01\x00" + rng.bytes(rng.randint(0, 200)))
            return
        np.lib.format.write_array_header_1_0(f, header)
        f.write(data)


def _mutate_ckpt(path: Path, op: str, index: int, rng) -> None:
    if op in ("truncate", "flip"):
        return _mutate_bytes(path, op, rng)
    import torch
    ck = torch.load(path, weights_only=True)
    keys = sorted(k for k in ck if k not in ("format",))
    key = keys[index % len(keys)]
    if op == "drop":
        del ck[key]
    elif op == "retype":
        ck[key] = [None, "x", 3, 1.5, [], {}][rng.randint(6)]
    elif op == "version":
        ck["version"] = int(rng.randint(-3, 5))
    else:
        ck[key] = torch.zeros(int(rng.randint(0, 5)))
    torch.save(ck, path)


def read_case(kind: str, path: Path) -> str:
    """Read ``path`` as the CLI does (compile a model, load an input array, load a
    checkpoint): ``"ok"`` or ``"refused"`` (an exit-2 ``QblifError``, one line)."""
    from qblif.core.errors import QblifError
    try:
        if kind in ("netx", "nir"):
            from qblif.passes.pipeline import compile_ir
            compile_ir(str(path))
        elif kind == "npy":
            from qblif.core.npyfile import load_npy
            load_npy(str(path))
        else:
            from qblif.training.checkpoint import load_checkpoint
            load_checkpoint(str(path))
    except QblifError as exc:
        if getattr(exc, "exit_code", 1) != 2 or "\n" in str(exc):
            raise
        return "refused"
    return "ok"


def cli_args(kind: str, path: Path) -> list:
    """The ``qblif`` command line that reads ``path`` (the soak runs it)."""
    if kind in ("netx", "nir"):
        return ["compile", str(path)]
    if kind == "npy":
        return ["run", str(NETX_MODEL), "--input", str(path), "--engine", "exact",
                "--steps", "2"]
    return ["train", "--resume", str(path), "--out", str(Path(path).with_suffix(".net"))]


def cleanup(path: Path) -> None:
    for p in (path, Path(path).with_suffix(".net")):
        if os.path.exists(p):
            os.remove(p)
