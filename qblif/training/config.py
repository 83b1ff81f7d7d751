"""Training configuration (:class:`TrainConfig`) and its checks against the documented ranges.

Ranges come from :mod:`qblif.core.params` (the chip's fields) through the units the
SLAYER blocks use: a threshold is in float weight units (``vThMant = threshold * 64``,
``vThMant`` in ``params.VTH_RANGE``); decays are fractions of 4096 (``iDecay = current_decay *
4096`` = du + 1 in [1, 4096], ``vDecay = voltage_decay * 4096`` = dv in [0, 4095], ``du``, ``dv``
in ``params.DECAY_RANGE``). A value outside its range is refused here, so the exported file
(where the blocks would clamp it) and the model card always agree.

Messages name the field as a library user writes it (``current_decay=2.0``); the CLI
rewords the field as its option (``--current-decay``).
"""
from __future__ import annotations

import dataclasses
import math

from qblif.core.encoding import DEFAULT_INPUT_BITS
from qblif.core.errors import QblifError
from qblif.core.params import DECAY_RANGE, INPUT_BITS_RANGE, MAX_BURST_RANGE, VTH_RANGE
from qblif.core.reference import ACT_SHIFT, DECAY_UNITY

SPIKING = ("qblif", "cuba")          # neuron families that spike (qblif train --neuron)
NEURONS = SPIKING + ("relu",)        # and the non-spiking reference network
ARCHS = ("mlp", "conv", "deep")     # qblif.training.models.arch_spec
LR_SCHEDULES = ("cosine", "constant")
CUBA_IMPLS = ("qblif", "lava-dl")
#: float-unit ranges of the neuron fields (see the module docstring)
THRESHOLD_RANGE = (VTH_RANGE[0] / 2 ** ACT_SHIFT, VTH_RANGE[1] / 2 ** ACT_SHIFT)
CURRENT_DECAY_RANGE = ((DECAY_RANGE[0] + 1) / DECAY_UNITY, (DECAY_RANGE[1] + 1) / DECAY_UNITY)
VOLTAGE_DECAY_RANGE = (DECAY_RANGE[0] / DECAY_UNITY, DECAY_RANGE[1] / DECAY_UNITY)


class ConfigError(QblifError):
    """A :class:`TrainConfig` field is out of range; ``field`` names it."""

    def __init__(self, field: str, message: str):
        self.field = field
        super().__init__(message)


@dataclasses.dataclass
class TrainConfig:
    """Everything that defines a training run (recorded in the model card)."""
    dataset: str = "digits"
    neuron: str = "qblif"          # qblif | cuba | relu
    arch: str = "mlp"              # mlp | conv
    timesteps: int = 4             # input window T (simulated: T feed-forward, else T + latency)
    max_burst: int = 4             # K (QB-LIF only)
    epochs: int = 5
    seed: int = 0
    lr: float = 3e-3
    batch_size: int = 32           # global batch (split over the processes of a DDP run)
    limit: int | None = None       # training samples (first N of the train split)
    val_limit: int | None = None
    test_limit: int | None = None
    threshold: float = 1.0         # initial threshold, float weight units (vThMant = 64x)
    current_decay: float = 1.0     # fraction: iDecay = 4096 x this, in [1, 4096]
    voltage_decay: float = 0.0     # fraction: vDecay = 4096 x this, in [0, 4095]
    reset_mode: str = "subtract"
    per_channel: bool = False
    learn_threshold: bool = True
    weight_scale: float = 1.0
    input_bits: int = DEFAULT_INPUT_BITS
    loss_scale: float = 1.0
    train_quantized: bool = True   # QB-LIF: train through the exact integer forward (the fused kernel)
    lr_schedule: str = "cosine"    # cosine (per epoch, to 0 over the planned epochs) | constant
    time_budget: float | None = None  # seconds for training + validation (plans the epochs)
    threads: int = 1
    device: str = "cpu"            # cpu | cuda | cuda:N
    progress: bool = True
    cuba_impl: str = "lava-dl"     # cuba only: lava-dl's blocks, or ours (QB-LIF K=1, reset zero)
    crop_pad: int = 0              # augmentation: random crop of the zero-padded image (0: off)
    hflip: bool = False            # augmentation: horizontal flip with probability 1/2


def _int_at_least(cfg, name, lo=1, optional=False):
    v = getattr(cfg, name)
    if optional and v is None:
        return
    if isinstance(v, bool) or not isinstance(v, int) or v < lo:
        raise ConfigError(name, f"{name}={v!r} is invalid: expected an integer >= {lo}")


def _in_range(name, v, lo, hi):
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) \
            or not lo <= v <= hi:
        raise ConfigError(name, f"{name}={v!r} is out of range: allowed [{lo:g}, {hi:g}]")


def _choice(name, v, choices):
    if v not in choices:
        raise ConfigError(name, f"{name}={v!r} is invalid: choose one of {', '.join(choices)}")


def check_config(cfg: TrainConfig) -> None:
    """Raise :class:`ConfigError` (one line naming the field, value and range) for a value
    outside its documented range; also checks the device (:func:`~.device.check_device`)."""
    _choice("neuron", cfg.neuron, NEURONS)
    _choice("arch", cfg.arch, ARCHS)
    _choice("lr_schedule", cfg.lr_schedule, LR_SCHEDULES)
    _choice("reset_mode", cfg.reset_mode, ("subtract", "zero"))
    _choice("cuba_impl", cfg.cuba_impl, CUBA_IMPLS)
    if cfg.neuron == "qblif":
        _in_range("max_burst", cfg.max_burst, *MAX_BURST_RANGE)
        if int(cfg.max_burst) != cfg.max_burst:
            raise ConfigError("max_burst", f"max_burst={cfg.max_burst!r} is invalid: expected an integer")
    for name in ("timesteps", "epochs", "batch_size", "threads"):
        _int_at_least(cfg, name)
    _int_at_least(cfg, "seed", 0)
    _int_at_least(cfg, "crop_pad", 0)
    for name in ("limit", "val_limit", "test_limit"):
        _int_at_least(cfg, name, optional=True)
    if cfg.neuron != "relu":
        _in_range("threshold", cfg.threshold, *THRESHOLD_RANGE)
        _in_range("current_decay", cfg.current_decay, *CURRENT_DECAY_RANGE)
        _in_range("voltage_decay", cfg.voltage_decay, *VOLTAGE_DECAY_RANGE)
    _in_range("input_bits", cfg.input_bits, *INPUT_BITS_RANGE)
    if int(cfg.input_bits) != cfg.input_bits:
        raise ConfigError("input_bits", f"input_bits={cfg.input_bits!r} is invalid: expected an integer")
    for name in ("lr", "loss_scale", "weight_scale"):
        v = getattr(cfg, name)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or not v > 0:
            raise ConfigError(name, f"{name}={v!r} is invalid: expected a finite number > 0")
    if cfg.time_budget is not None and not cfg.time_budget > 0:
        raise ConfigError("time_budget", f"time_budget={cfg.time_budget!r} is invalid: "
                                         f"expected > 0 seconds")
    check_device(cfg.device)


def config_from_dict(d: dict) -> TrainConfig:
    """A :class:`TrainConfig` from a card's or checkpoint's ``config`` (unknown keys ignored,
    missing ones default)."""
    names = {f.name for f in dataclasses.fields(TrainConfig)}
    return TrainConfig(**{k: v for k, v in d.items() if k in names})


def check_device(device: str) -> None:
    """Raise :class:`QblifError` unless ``device`` is ``cpu`` or an available CUDA device."""
    import torch
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise ConfigError("device", f"device={device!r} is invalid: expected cpu, cuda or "
                                    f"cuda:N") from None
    if dev.type == "cpu":
        return
    if dev.type != "cuda":
        raise ConfigError("device", f"device={device!r} is not supported: expected cpu, cuda "
                                    f"or cuda:N")
    if not torch.cuda.is_available():
        raise ConfigError("device", f"device={device!r}: CUDA is not available (torch "
                                    f"{torch.__version__}, "
                                    f"{'no GPU found' if torch.version.cuda else 'a CPU-only build'})")
    if dev.index is not None and dev.index >= torch.cuda.device_count():
        raise ConfigError("device", f"device={device!r}: only {torch.cuda.device_count()} "
                                    f"CUDA device(s)")
