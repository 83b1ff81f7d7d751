"""Build a C source of the package once with the system C compiler into a per-user cache
(``$XDG_CACHE_HOME/qblif-lava``, keyed by the source, compiler, flags and CPU) and load it with
ctypes. Used by the exact engine's scan and the training's fused neuron; each caller sets
argument types and falls back to torch code where :func:`build_library` raises ``OSError``
(no compiler) or ``subprocess.SubprocessError`` (the build failed)."""
from __future__ import annotations

import ctypes
import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

CFLAGS = ("-O3", "-march=native", "-fPIC", "-shared", "-std=c99")
#: set to 0 to disable every native kernel (the torch code runs instead)
NATIVE_ENV = "QBLIF_NATIVE"


def native_enabled() -> bool:
    """False when ``QBLIF_NATIVE=0``."""
    return os.environ.get(NATIVE_ENV, "1") != "0"


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "qblif-lava"


def _cpu() -> str:
    """The CPU model and flags (the build is ``-march=native``)."""
    try:
        with open("/proc/cpuinfo") as f:
            return "".join(sorted({ln for ln in f if ln.startswith(("model name", "flags"))}))
    except OSError:
        return ""


def build_library(source: Path, cflags=CFLAGS, libs=()) -> ctypes.CDLL:
    """The compiled and loaded ``source`` (cached; a concurrent build never sees half a file);
    ``libs``: linker arguments after the source (``-lm``)."""
    cc = os.environ.get("CC") or shutil.which("gcc") or shutil.which("cc")
    if cc is None:
        raise OSError("no C compiler (gcc or cc) on PATH")
    src = Path(source).read_bytes()
    tag = hashlib.sha256(src + " ".join([cc, _cpu(), *cflags, *libs]).encode()).hexdigest()[:16]
    so = cache_dir() / f"{Path(source).stem}-{tag}.so"
    if not so.exists():
        so.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(suffix=".so", dir=so.parent)
        os.close(fd)
        try:
            subprocess.run([cc, *cflags, str(source), "-o", tmp, *libs], check=True,
                           capture_output=True, timeout=120)
            os.replace(tmp, so)
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)
    return ctypes.CDLL(str(so))


def lazy_library(build):
    """``library()``: ``build()`` (a loaded :class:`ctypes.CDLL`) on the first call, then the
    same library; None where it cannot be had (``QBLIF_NATIVE=0``, no C compiler, a failed
    build), so the caller falls back to its torch path."""
    state = {"tried": False, "lib": None}

    def library() -> "ctypes.CDLL | None":
        if not native_enabled():
            return None
        if not state["tried"]:
            state["tried"] = True
            try:
                state["lib"] = build()
            except (OSError, subprocess.SubprocessError):
                state["lib"] = None
        return state["lib"]
    return library
