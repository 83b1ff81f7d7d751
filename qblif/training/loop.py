"""The training loop: schedule, epochs, checkpoints and resume, data-parallel steps.

Loss: cross-entropy on the output spike counts summed over time (logits = counts *
``loss_scale``), the mean over the global batch. Optimizer: Adam; learning rate per epoch:
cosine from ``lr`` towards 0 over the planned epochs (or constant); ``time_budget`` plans the
epochs from the pace so far. The model kept is the one with the best validation accuracy
(quantized mode).

Checkpoints (``checkpoint=PATH``): after every epoch, and when a run is stopped (Ctrl-C,
SIGTERM, ``stop_after`` seconds), PATH is replaced atomically by a ``torch.save`` of the
model, the optimizer, the schedule position (epoch, planned epochs, the batch inside the
epoch and that epoch's sample order), the data-order generator, every process's torch /
numpy / python RNG states, the history and the best weights so far. ``resume=PATH``
continues from there to the same final weights as the uninterrupted run (bit-identical on
CPU with the same number of threads), whether it stopped between epochs or inside one.
"""
from __future__ import annotations

import copy
import dataclasses
import datetime
import signal
import threading
import time

import numpy as np
import torch
import torch.nn.functional as F

from qblif.core.data import input_shape as dataset_input_shape, load_dataset
from qblif.core.errors import CheckpointError, QblifError
from qblif.training import distributed as ddp
from qblif.training.card import versions
from qblif.training.checkpoint import CHECKPOINT_VERSION, load_checkpoint, save_checkpoint  # noqa: F401 (re-exported)
from qblif.training.config import TrainConfig, check_config
from qblif.training.device import configure_device, device_name, rng_states, seed_everything, set_rng_states
from qblif.training.evaluate import encode, evaluate, sim_steps, thresholds
from qblif.training.models import build_model, describe, neuron_params, set_quantized

#: config fields that may differ between a checkpoint and the run that resumes it
RESUME_MAY_CHANGE = ("progress", "time_budget", "device")


class TrainingStopped(QblifError):
    """A run stopped before its end (Ctrl-C, SIGTERM, ``stop_after``); ``checkpoint`` holds it."""

    exit_code = 3

    def __init__(self, message: str, checkpoint: str | None):
        self.checkpoint = checkpoint
        super().__init__(message)


def lr_at(cfg: TrainConfig, epoch: int, planned: int) -> float:
    """Learning rate of ``epoch`` (1-based) of ``planned``: constant, or cosine from ``lr``
    (epoch 1) towards 0 (one step past the last epoch)."""
    if cfg.lr_schedule == "constant" or planned <= 1:
        return cfg.lr
    return cfg.lr * 0.5 * (1.0 + np.cos(np.pi * (epoch - 1) / planned))


def plan_epochs(cfg: TrainConfig, elapsed: float, last_epoch: float) -> int:
    """Epochs to run from the one just finished (counted) on: ``cfg.epochs``, or fewer when
    ``time_budget`` (seconds from the start of training, validation included) would not
    hold them at the last epoch's pace. Re-planned after every epoch, so a slowdown (a
    shared GPU) shortens the run instead of overrunning the budget."""
    if cfg.time_budget is None:
        return int(cfg.epochs)
    fit = 1 + int(max(0.0, cfg.time_budget - elapsed) // max(last_epoch, 1e-9))
    return max(1, min(int(cfg.epochs), fit))


def make_model(cfg: TrainConfig):
    """Build the model of ``cfg`` (seeded by the caller)."""
    params = None
    if cfg.neuron != "relu":
        params = neuron_params(cfg.neuron, threshold=cfg.threshold,
                               current_decay=cfg.current_decay, voltage_decay=cfg.voltage_decay,
                               max_burst=cfg.max_burst, reset_mode=cfg.reset_mode,
                               per_channel=cfg.per_channel, learn_threshold=cfg.learn_threshold,
                               cuba_impl=cfg.cuba_impl)
    return build_model(cfg.neuron, cfg.dataset, cfg.arch, dataset_input_shape(cfg.dataset),
                       params, weight_scale=cfg.weight_scale, cuba_impl=cfg.cuba_impl)


def clamp_thresholds(model) -> None:
    """Keep learnable thresholds in the chip's range (>= 1/64, spec section 3)."""
    for b in getattr(model, "blocks", []):
        n = getattr(b, "neuron", None)
        if n is not None and callable(getattr(n, "clamp", None)):
            n.clamp()




def device_params(model) -> dict | None:
    """The exported ``iDecay``/``vDecay`` of the first spiking block (the card records them)."""
    for b in getattr(model, "blocks", []):
        n = getattr(b, "neuron", None)
        if n is not None and hasattr(n, "cx_current_decay"):
            return {"iDecay": int(n.cx_current_decay), "vDecay": int(n.cx_voltage_decay)}
    return None


def augment(x: torch.Tensor, in_shape, crop_pad: int = 0, hflip: bool = False) -> torch.Tensor:
    """Data augmentation of a batch of encoded images ``x`` (``(N, C, H, W)`` or flat
    ``(N, C*H*W)``; ``in_shape`` = (C, H, W)): a horizontal flip with probability 1/2
    (``hflip``), then a random ``H x W`` crop of the image zero-padded by ``crop_pad`` pixels
    on each side. Draws from the global torch RNG (seeded per rank, saved in checkpoints)."""
    n = len(x)
    c, h, w = (int(s) for s in in_shape)
    img = x.reshape(n, c, h, w)
    if hflip:
        flip = (torch.rand(n) < 0.5).to(x.device)
        img = torch.where(flip.view(n, 1, 1, 1), img.flip(-1), img)
    if crop_pad:
        p = int(crop_pad)
        padded = F.pad(img, (p, p, p, p))
        oy = torch.randint(0, 2 * p + 1, (n,)).to(x.device)
        ox = torch.randint(0, 2 * p + 1, (n,)).to(x.device)
        rows = oy[:, None] + torch.arange(h, device=x.device)
        cols = ox[:, None] + torch.arange(w, device=x.device)
        idx = torch.arange(n, device=x.device)[:, None, None]
        img = padded[idx, :, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)
    return img.reshape(x.shape)


# ----------------------------------------------------------------------------- checkpoints
# the format (tensors and plain values only, read with weights_only=True): training/checkpoint.py


def config_of_checkpoint(path: str) -> TrainConfig:
    """The :class:`TrainConfig` a checkpoint was written with."""
    from qblif.training.config import config_from_dict
    return config_from_dict(load_checkpoint(path)["config"])


def _check_resume_config(cfg: TrainConfig, ck: dict, path: str) -> None:
    saved = ck["config"]
    for k, v in dataclasses.asdict(cfg).items():
        if k not in RESUME_MAY_CHANGE and k in saved and saved[k] != v:
            raise QblifError(f"cannot resume {path}: it was written with {k}={saved[k]!r}, "
                             f"this run has {k}={v!r}")


def _restore(ck: dict, path: str, model, opt, gen, rank: int) -> tuple:
    """Load checkpoint ``ck`` into ``model``, ``opt``, ``gen`` and this rank's RNGs; returns
    ``(state, position)``. A checkpoint that does not fit is one :class:`CheckpointError`."""
    try:
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["optimizer"])
        gen.set_state(ck["generator"])
        rngs = ck["rng"]
        set_rng_states(rngs[rank] if rank < len(rngs) else rngs[0])
        return dict(ck["state"], resumed=int(ck["state"]["resumed"]) + 1), ck["position"]
    except (RuntimeError, KeyError, TypeError, ValueError, IndexError) as exc:
        raise CheckpointError(f"cannot resume {path}: it does not fit this model "
                              f"({type(exc).__name__}: {' '.join(str(exc).split())[:160]})") from None


class _StopRequests:
    """SIGINT / SIGTERM during the loop: finish the batch, checkpoint, stop (a second
    SIGINT interrupts at once). Installed only in the main thread."""

    def __init__(self):
        self.signal = None
        self._old = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for s in (signal.SIGINT, signal.SIGTERM):
                self._old[s] = signal.signal(s, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.signal is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.signal = signal.Signals(signum).name

    def __exit__(self, *exc):
        for s, h in self._old.items():
            signal.signal(s, h)
        return False


# ----------------------------------------------------------------------------- the loop
def train(cfg: TrainConfig, log=print, *, checkpoint: str | None = None,
          resume: str | None = None, stop_after: float | None = None, on_batch=None):
    """Train per ``cfg``. Returns ``(model, result)``; the model holds the weights with the
    best validation accuracy (quantized mode), ``result`` the card fields (``None`` on the
    ranks other than 0 of a data-parallel run).

    Epochs: ``cfg.epochs``, or fewer if ``cfg.time_budget`` is set and the pace so far
    (training + validation, re-planned after every epoch) says they would not fit; the cosine
    schedule spans the planned epochs. ``result["epochs"]`` is the number run.

    ``checkpoint``: path of the checkpoint written after every epoch and on a stop.
    ``resume``: a checkpoint to continue (its config must equal ``cfg`` but for
    ``RESUME_MAY_CHANGE``). ``stop_after``: seconds after which this call checkpoints and
    raises :class:`TrainingStopped` (a run continued later with ``resume``); SIGINT and
    SIGTERM do the same after the current batch. ``on_batch(epoch, batch)``: called after
    every optimizer step (tests interrupt a run there).
    Inside ``torchrun`` (``WORLD_SIZE`` > 1) the run is data-parallel (see
    :mod:`qblif.training.distributed`)."""
    check_config(cfg)
    ck = None
    if resume is not None:
        ck = load_checkpoint(resume)
        _check_resume_config(cfg, ck, resume)
    ctx = ddp.init(cfg.device)
    rank_dev = ddp.rank_device(cfg.device, ctx)
    seed_everything(cfg.seed, cfg.threads, rank_dev)
    dev = configure_device(dataclasses.replace(cfg, device=rank_dev))
    x_tr, y_tr = load_dataset(cfg.dataset, "train", cfg.limit)
    x_va, y_va = load_dataset(cfg.dataset, "val", cfg.val_limit)
    x_te, y_te = load_dataset(cfg.dataset, "test", cfg.test_limit)
    model = make_model(cfg)                       # identical on every rank (same seed)
    steps = sim_steps(model, cfg.timesteps)
    model.to(dev)
    # per-rank deterministic seeds for anything drawn after the model is built
    seed_everything(cfg.seed + ctx.rank, cfg.threads, rank_dev)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    net = model
    if ctx.world > 1:
        from torch.nn.parallel import DistributedDataParallel
        net = DistributedDataParallel(model, device_ids=[dev.index] if dev.type == "cuda" else None,
                                      broadcast_buffers=False)
    xt = encode(model, x_tr, cfg.input_bits).to(dev)
    yt = torch.from_numpy(y_tr).to(dev)
    gen = torch.Generator().manual_seed(int(cfg.seed))
    st = {"epoch": 0, "planned": int(cfg.epochs), "history": [], "best_val": -1.0,
          "best_state": None, "epoch_times": [], "elapsed": 0.0, "resumed": 0}
    pos = None              # inside an epoch: its order, next batch, partial sums
    if ck is not None:
        st, pos = _restore(ck, resume, model, opt, gen, ctx.rank)
    writer = ctx.is_writer

    def snapshot(position):
        rngs = ddp.gather_objects(rng_states(), ctx)
        if not writer or checkpoint is None:
            return
        save_checkpoint(checkpoint, {
            "config": dataclasses.asdict(cfg),
            "world_size": ctx.world, "model": model.state_dict(), "optimizer": opt.state_dict(),
            "generator": gen.get_state(), "rng": rngs,
            "state": dict(st, elapsed=time.perf_counter() - t0), "position": position})

    t0 = time.perf_counter() - st["elapsed"]
    t_call = time.perf_counter()
    B = int(cfg.batch_size)
    n = len(xt)
    with _StopRequests() as stops:
        while st["epoch"] < st["planned"]:
            epoch = st["epoch"] + 1
            if pos is None:
                pos = {"epoch": epoch, "lr": lr_at(cfg, epoch, st["planned"]),
                       "perm": torch.randperm(n, generator=gen), "next": 0, "loss_sum": 0.0,
                       "seen": 0, "seconds": 0.0}
            for group in opt.param_groups:
                group["lr"] = pos["lr"]
            model.train()
            set_quantized(model, cfg.train_quantized)
            te = time.perf_counter() - pos["seconds"]
            perm = pos["perm"].to(dev)
            bar = _tqdm(range(pos["next"], n, B), cfg.progress and writer,
                        f"epoch {epoch}/{st['planned']}")
            for i in bar:
                now = time.perf_counter()
                out_of_time = (pos["seen"] and cfg.time_budget is not None
                               and now - t0 > cfg.time_budget)
                stop = (stops.signal is not None
                        or (stop_after is not None and now - t_call > stop_after))
                if ctx.world > 1:
                    out_of_time = ddp.any_flag(bool(out_of_time), ctx)
                    stop = ddp.any_flag(stop, ctx)
                if stop:
                    pos["seconds"] = time.perf_counter() - te
                    snapshot(pos)
                    why = stops.signal or f"stop_after={stop_after:g} s"
                    raise TrainingStopped(
                        f"training stopped ({why}) in epoch {epoch} at batch {i // B}"
                        + (f"; checkpoint {checkpoint}: continue with --resume {checkpoint}"
                           if checkpoint else "; no checkpoint path was given"), checkpoint)
                if out_of_time:
                    st["planned"] = epoch            # out of time mid-epoch: validate and stop
                    break
                idx = perm[i:i + B]
                local = idx[ctx.rank::ctx.world]
                xb = xt[local]
                if cfg.crop_pad or cfg.hflip:
                    xb = augment(xb, model.in_shape, cfg.crop_pad, cfg.hflip)
                logits = _logits(net, model, xb, steps, cfg.loss_scale)
                if ctx.world == 1:
                    loss = F.cross_entropy(logits, yt[local])
                else:   # DDP averages gradients over ranks: scale to the global batch mean
                    loss = F.cross_entropy(logits, yt[local], reduction="sum") * (ctx.world / len(idx))
                opt.zero_grad()
                loss.backward()
                opt.step()
                clamp_thresholds(model)
                local_sum = float(loss.detach()) * (len(idx) if ctx.world == 1 else len(idx) / ctx.world)
                pos["loss_sum"] += local_sum
                pos["seen"] += len(idx)
                pos["next"] = i + B
                if hasattr(bar, "set_postfix"):
                    bar.set_postfix(loss=f"{float(loss):.3f}")
                if on_batch is not None:
                    on_batch(epoch, i // B)
            seconds = time.perf_counter() - te
            train_loss = ddp.all_sum(pos["loss_sum"], ctx) / max(pos["seen"], 1)
            if writer:
                v = evaluate(model, x_va, y_va, cfg.timesteps, cfg.input_bits, stats=True)
                st["history"].append({
                    "epoch": epoch, "train_loss": train_loss, "val_accuracy": v["accuracy"],
                    "val_spikes_per_neuron_step": v.get("spikes_per_neuron_step"),
                    "thresholds": thresholds(model), "lr": pos["lr"], "samples": pos["seen"],
                    "seconds": seconds})
                st["epoch_times"].append(seconds)
                st["planned"] = min(st["planned"], epoch - 1 + plan_epochs(
                    cfg, time.perf_counter() - t0, time.perf_counter() - te))
                if log:
                    log(f"epoch {epoch}/{st['planned']}: loss {train_loss:.4f}  val accuracy "
                        f"{v['accuracy']:.4f} (quantized)  lr {pos['lr']:.2e}  {seconds:.1f}s")
                if v["accuracy"] > st["best_val"]:
                    st["best_val"] = v["accuracy"]
                    st["best_state"] = copy.deepcopy(model.state_dict())
            st["planned"] = ddp.broadcast_object(st["planned"], ctx)
            st["epoch"] = epoch
            pos = None
            snapshot(None)        # also after the last epoch: a failed export can resume
    train_seconds = time.perf_counter() - t0
    ddp.barrier(ctx)
    if not writer:
        return model, None
    if st["best_state"] is not None:
        model.load_state_dict(st["best_state"])
    test = evaluate(model, x_te, y_te, cfg.timesteps, cfg.input_bits, stats=True)
    times = st["epoch_times"]
    result = {
        "dataset": cfg.dataset, "neuron": cfg.neuron, "arch": cfg.arch,
        "architecture": describe(cfg.dataset, cfg.arch),
        "timesteps": cfg.timesteps,
        "latency": getattr(model, "latency", 0) if cfg.neuron != "relu" else 0,
        "simulated_steps": steps,
        "max_burst": cfg.max_burst if cfg.neuron == "qblif" else 1,
        "seed": cfg.seed, "epochs": st["epoch"], "device": device_name(dev),
        "world_size": ctx.world,
        "train_samples": len(x_tr), "val_samples": len(x_va), "test_samples": len(x_te),
        "best_val_accuracy": st["best_val"],
        "test_accuracy": test["accuracy"],
        "spikes_per_neuron_step": test.get("spikes_per_neuron_step"),
        "synops_per_sample": test.get("synops_per_sample"),
        "spike_synops_per_sample": test.get("spike_synops_per_sample"),
        "input_synops_per_sample": test.get("input_synops_per_sample"),
        "train_seconds": train_seconds,
        "seconds_per_epoch": float(np.mean(times)) if times else 0.0,
        "history": st["history"],
        "config": dataclasses.asdict(cfg),
        "device_params": device_params(model),
        "thresholds": thresholds(model),
        "resumed": st["resumed"],
        "versions": versions(),
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    return model, result


def _logits(net, model, xb, steps, loss_scale):
    """Training forward of one batch through ``net`` (``model`` or its DDP wrapper)."""
    if model.neuron == "relu":
        return net(xb)
    x = xb.unsqueeze(-1).expand(*xb.shape, steps).contiguous()
    return net(x).sum(-1) * loss_scale


def _tqdm(it, enabled, desc):
    if not enabled:
        return it
    from tqdm import tqdm
    # disable=None: a bar on a terminal, silence in logs and CI (per-epoch lines remain)
    return tqdm(it, desc=desc, leave=False, dynamic_ncols=True, disable=None)
