"""Device set-up for training: checks, lava-dl's CUDA JIT target, seeds and thread counts."""
from __future__ import annotations

import random

import numpy as np
import torch

from qblif.training.config import ConfigError, TrainConfig, check_device  # noqa: F401 (check_device: re-exported)

from qblif.core.errors import QblifError

CUBA_KERNELS = ("leaky_integrator", "shift")


def uses_lavadl_kernels(cfg) -> bool:
    """Whether ``cfg`` trains lava-dl CUBA blocks (their CUDA kernels are JIT-built on a GPU)."""
    return cfg.neuron == "cuba" and cfg.cuba_impl == "lava-dl"


def configure_device(cfg) -> torch.device:
    """The torch device of ``cfg``. On CUDA, lava-dl JIT-compiles kernels (CUBA dynamics, time
    shift); its ``jitconfig`` would target sm_80 only on any GPU of compute capability >= 8,
    which cannot run on a newer GPU (an H100, sm_90: "no kernel image is available"), so it
    is pointed at this GPU."""
    dev = torch.device(cfg.device)
    if dev.type == "cuda" and cfg.neuron != "relu":
        from lava.lib.dl.slayer import jitconfig
        major, minor = torch.cuda.get_device_capability(dev)
        jitconfig.TORCH_CUDA_ARCH_LIST = f"{major}.{minor}"
    return dev


def build_cuba_kernel(name: str, device: str = "cuda") -> None:
    """JIT-compile one of lava-dl's CUDA kernels that its CUBA blocks use (``CUBA_KERNELS``:
    the dynamics and the time shift of ``delay_shift``) for ``device`` now; torch caches it
    under ``~/.cache/torch_extensions``, so parallel runs neither race nor time the build."""
    configure_device(TrainConfig(neuron="cuba", device=device))
    getattr(kernel_module(name).Accelerated, name)  # the static property builds and loads it


def kernel_module(name: str):
    """The lava-dl module whose ``Accelerated.<name>`` JIT-builds kernel ``name``. (Imported
    by path: ``lava.lib.dl.slayer.utils.time`` re-exports the function ``shift`` under the
    module's name.)"""
    import importlib
    paths = {"leaky_integrator": "lava.lib.dl.slayer.neuron.dynamics.leaky_integrator",
             "shift": "lava.lib.dl.slayer.utils.time.shift"}
    if name not in paths:
        raise ValueError(f"unknown kernel {name!r}: one of {', '.join(CUBA_KERNELS)}")
    return importlib.import_module(paths[name])


def seed_everything(seed: int, threads: int = 1, device: str = "cpu") -> None:
    """Fixed seed (torch, numpy, python) and thread count; deterministic kernels on CPU (runs
    are repeatable there; CUDA runs are seeded but not bit-repeatable)."""
    torch.manual_seed(int(seed))
    np.random.seed(int(seed) % 2 ** 32)
    random.seed(int(seed))
    torch.set_num_threads(int(threads))
    torch.use_deterministic_algorithms(torch.device(device).type == "cpu", warn_only=True)


def device_name(dev: torch.device) -> str:
    """``"CPU"`` or ``"<GPU name> (CUDA)"`` (recorded in the card)."""
    if dev.type == "cuda":
        return f"{torch.cuda.get_device_name(dev)} (CUDA)"
    return "CPU"


def rng_states() -> dict:
    """The global RNG states, for a checkpoint, as tensors and plain values only: torch CPU
    and CUDA (uint8 tensors), numpy's MT19937 ``(name, keys as an int64 tensor, pos,
    has_gauss, cached)`` and python's ``random.getstate()`` (a tuple of ints)."""
    name, keys, pos, has_gauss, cached = np.random.get_state()
    return {"torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
            "numpy": (str(name), torch.from_numpy(keys.astype(np.int64)), int(pos),
                      int(has_gauss), float(cached)),
            "python": random.getstate()}


def set_rng_states(s: dict) -> None:
    """Restore :func:`rng_states`."""
    torch.set_rng_state(s["torch"])
    if s.get("cuda") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(s["cuda"])
    name, keys, pos, has_gauss, cached = s["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.int64).astype(np.uint32), int(pos),
                         int(has_gauss), float(cached)))
    version, internal, gauss = s["python"]
    random.setstate((int(version), tuple(int(x) for x in internal), gauss))
