"""SLAYER training of QB-LIF / CUBA networks (and a ReLU baseline), evaluation, export.

Time convention. ``timesteps`` T is the input window: every sample (integers of
:func:`qblif_lava.encoding.quantize_intensity`) is presented unchanged on every step, and
the network is simulated for ``T + latency`` steps, ``latency`` being the number of
delaying blocks (Dense/Conv/Pool, one step each, as Lava's synapses). The output layer's
spike counts are summed over all simulated steps (the first ``latency`` steps are zero by
construction), so T counts the steps in which the output can respond. The exported file
stores ``/qblif/timesteps = T``: the steps each sample is presented on the chip; the
compiled graph's per-layer windows absorb the latency, so the Lava output over a sample's
T-step window is exactly this readout (``compiler.verify``).

Loss: cross-entropy on the output spike counts summed over time (logits = counts *
``loss_scale``). Optimizer: Adam, learning rate per epoch: cosine from ``lr`` towards 0 over
the planned epochs (or constant); ``time_budget`` plans the epochs from the pace so far.
Device: CPU (deterministic for a seed) or CUDA. The QB-LIF threshold is learnable (per layer, or per
channel with ``per_channel``). Validation and test accuracy are measured in quantized mode
(QB-LIF's exact integer forward; lava-dl CUBA is always 8-bit quantized).

Statistics (per test sample): ``spikes_per_neuron_step`` = unit events (burst counts n,
summed) over all spiking neurons / (neurons x simulated steps); SynOps = unit events x
fan-out (spec section 4), fan-out counting only synapses with a non-zero quantized weight
(what the compiler places): ``spike_synops_per_sample`` over the blocks fed by spikes,
``input_synops_per_sample`` for the graded input (payload x_int counts as x_int unit
events), ``synops_per_sample`` their sum (as ``qblif run`` measures it). For ReLU:
``synops_per_sample`` is the MAC count of one dense forward pass.
"""
from __future__ import annotations

import copy
import dataclasses
import datetime
import json
import os
import time

import numpy as np
import torch
import torch.nn.functional as F

from qblif_lava.data import input_shape as dataset_input_shape, load_dataset
from qblif_lava.encoding import DEFAULT_INPUT_BITS, quantize_intensity
from qblif_lava.errors import QblifError
from qblif_lava.fileio import atomic_write_text, writable_problem  # noqa: F401  (atomic_write_text re-exported for the benches)
from qblif_lava.training.models import (build_model, describe, fanout_map, neuron_params,
                                        set_quantized)


@dataclasses.dataclass
class TrainConfig:
    """Everything that defines a training run (recorded in the model card)."""
    dataset: str = "digits"
    neuron: str = "qblif"          # qblif | cuba | relu
    arch: str = "mlp"              # mlp | conv
    timesteps: int = 4             # input window T (simulated steps = T + latency)
    max_burst: int = 4             # K (QB-LIF only)
    epochs: int = 5
    seed: int = 0
    lr: float = 3e-3
    batch_size: int = 32
    limit: int | None = None       # training samples (first N of the train split)
    val_limit: int | None = None
    test_limit: int | None = None
    threshold: float = 1.0         # initial threshold, float weight units (vThMant = 64x)
    current_decay: float = 1.0
    voltage_decay: float = 0.0
    reset_mode: str = "subtract"
    per_channel: bool = False
    learn_threshold: bool = True
    weight_scale: float = 1.0
    input_bits: int = DEFAULT_INPUT_BITS
    loss_scale: float = 1.0
    train_quantized: bool = False  # QB-LIF: train through the exact integer forward (STE)
    lr_schedule: str = "cosine"    # cosine (per epoch, to 0 over the planned epochs) | constant
    time_budget: float | None = None  # seconds for training + validation (plans the epochs)
    threads: int = 1
    device: str = "cpu"            # cpu | cuda | cuda:N
    progress: bool = True


def check_config(cfg: TrainConfig) -> None:
    """Raise :class:`QblifError` (one line) for values out of range."""
    if cfg.neuron == "qblif" and not 1 <= int(cfg.max_burst) <= 255:
        raise QblifError(f"--max-burst {cfg.max_burst} is out of range: allowed [1, 255]")
    for name in ("timesteps", "epochs", "batch_size", "threads"):
        if int(getattr(cfg, name)) < 1:
            raise QblifError(f"--{name.replace('_', '-')} {getattr(cfg, name)} is invalid: expected >= 1")
    for name in ("limit", "val_limit", "test_limit"):
        v = getattr(cfg, name)
        if v is not None and int(v) < 1:
            raise QblifError(f"--{name.replace('_', '-')} {v} is invalid: expected >= 1")
    if not cfg.threshold > 0:
        raise QblifError(f"--threshold {cfg.threshold} is invalid: expected > 0")
    if not cfg.lr > 0:
        raise QblifError(f"--lr {cfg.lr} is invalid: expected > 0")
    if not 1 <= int(cfg.input_bits) <= 8:
        raise QblifError(f"--input-bits {cfg.input_bits} is out of range: allowed [1, 8]")
    if cfg.lr_schedule not in LR_SCHEDULES:
        raise QblifError(f"--lr-schedule {cfg.lr_schedule!r} is invalid: choose one of "
                         f"{', '.join(LR_SCHEDULES)}")
    if cfg.time_budget is not None and not cfg.time_budget > 0:
        raise QblifError(f"--time-budget {cfg.time_budget} is invalid: expected > 0 seconds")
    check_device(cfg.device)


LR_SCHEDULES = ("cosine", "constant")


def check_device(device: str) -> None:
    """Raise :class:`QblifError` unless ``device`` is ``cpu`` or an available CUDA device."""
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise QblifError(f"--device {device!r} is invalid: expected cpu, cuda or cuda:N") from None
    if dev.type == "cpu":
        return
    if dev.type != "cuda":
        raise QblifError(f"--device {device!r} is not supported: expected cpu, cuda or cuda:N")
    if not torch.cuda.is_available():
        raise QblifError(f"--device {device}: CUDA is not available (torch {torch.__version__}, "
                         f"{'no GPU found' if torch.version.cuda else 'a CPU-only build'})")
    if dev.index is not None and dev.index >= torch.cuda.device_count():
        raise QblifError(f"--device {device}: only {torch.cuda.device_count()} CUDA device(s)")


def configure_device(cfg: TrainConfig) -> torch.device:
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


CUBA_KERNELS = ("leaky_integrator", "shift")


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


def seed_everything(seed: int, threads: int = 1, device: str = "cpu") -> None:
    """Fixed seed and thread count; deterministic kernels on CPU (runs are repeatable
    there; CUDA runs are seeded but not bit-repeatable)."""
    torch.manual_seed(int(seed))
    np.random.seed(int(seed) % 2 ** 32)
    torch.set_num_threads(int(threads))
    torch.use_deterministic_algorithms(torch.device(device).type == "cpu", warn_only=True)


def make_model(cfg: TrainConfig):
    """Build the model of ``cfg`` (seeded by the caller)."""
    params = None
    if cfg.neuron != "relu":
        params = neuron_params(cfg.neuron, threshold=cfg.threshold,
                               current_decay=cfg.current_decay, voltage_decay=cfg.voltage_decay,
                               max_burst=cfg.max_burst, reset_mode=cfg.reset_mode,
                               per_channel=cfg.per_channel, learn_threshold=cfg.learn_threshold)
    return build_model(cfg.neuron, cfg.dataset, cfg.arch, dataset_input_shape(cfg.dataset),
                       params, weight_scale=cfg.weight_scale)


def encode(model, images: np.ndarray, input_bits: int) -> torch.Tensor:
    """Images (N, C, H, W) in [0, 1] -> model input: integer intensities as float32, shape
    (N, C, H, W) or (N, C*H*W) for a flat-input spiking model (time is added per batch)."""
    x = torch.from_numpy(quantize_intensity(images, input_bits).astype(np.float32))
    if model.neuron == "relu":
        return x / float(2 ** input_bits - 1)
    if model.flat_input:
        x = x.reshape(len(x), -1)
    return x


def sim_steps(model, timesteps: int) -> int:
    """Simulated steps for an input window of ``timesteps`` (T + latency)."""
    return int(timesteps) + (model.latency if model.neuron != "relu" else 0)


def logits_of(model, xb: torch.Tensor, steps: int, loss_scale: float = 1.0, record=False):
    """Forward one batch: ``(N, 10)`` logits (spike counts x loss_scale, or ReLU outputs)."""
    if model.neuron == "relu":
        out = model(xb)
        return (out, None) if record else out
    x = xb.unsqueeze(-1).expand(*xb.shape, steps).contiguous()
    if record:
        out, inputs = model(x, record=True)
        return out.sum(-1) * loss_scale, (inputs, out)
    return model(x).sum(-1) * loss_scale


@torch.no_grad()
def evaluate(model, images: np.ndarray, labels: np.ndarray, timesteps: int, input_bits: int,
             batch_size: int = 128, stats: bool = False) -> dict:
    """Accuracy (quantized mode) and, with ``stats``, spikes/neuron/step and SynOps per
    sample (see module doc)."""
    was_training = model.training
    model.eval()
    set_quantized(model, True)
    steps = sim_steps(model, timesteps)
    dev = model_device(model)
    x_all = encode(model, images, input_bits)
    y_all = torch.from_numpy(labels)
    correct = 0
    spikes = neurons = 0.0
    synops = input_ops = 0.0
    fanouts = None
    for i in range(0, len(x_all), batch_size):
        xb, yb = x_all[i:i + batch_size].to(dev), y_all[i:i + batch_size].to(dev)
        if not stats or model.neuron == "relu":
            logits = logits_of(model, xb, steps)
            correct += int((logits.argmax(1) == yb).sum())
            continue
        # one extra step: the delayed tensors then hold every block's emissions of the
        # ``steps`` simulated steps (lava-dl's delay_shift drops the last one)
        x = xb.unsqueeze(-1).expand(*xb.shape, steps + 1).contiguous()
        out, inputs = model(x, record=True)
        correct += int((out[..., :steps].sum(-1).argmax(1) == yb).sum())
        if fanouts is None:
            fanouts = [fanout_map(b, t.shape[1:-1]) for b, t in zip(model.blocks, inputs)]
        outputs = inputs[1:] + [out]
        for j, (x_in, y_out, fo) in enumerate(zip(inputs, outputs, fanouts)):
            if fo is None:                                         # Flatten
                continue
            if j == 0:     # graded input, steps 0..S-1: payload x_int = x_int unit events
                input_ops += float((x_in[..., :steps].sum((0, -1)) * fo).sum())
            else:          # spikes emitted by the previous block in steps 0..S-1
                synops += float((x_in[..., 1:].sum((0, -1)) * fo).sum())
            spikes += float(y_out[..., 1:].sum())
            if i == 0:
                neurons += y_out[0, ..., 0].numel()
    n = len(x_all)
    res = {"accuracy": correct / max(n, 1), "samples": n}
    if stats:
        if model.neuron == "relu":
            res.update(spikes_per_neuron_step=None, synops_per_sample=float(model.macs()),
                       spike_synops_per_sample=None, input_synops_per_sample=None)
        else:
            res.update(spikes_per_neuron_step=spikes / (neurons * n * steps) if neurons else 0.0,
                       synops_per_sample=(synops + input_ops) / n,
                       spike_synops_per_sample=synops / n, input_synops_per_sample=input_ops / n)
    model.train(was_training)          # left in quantized mode (the evaluation/export default)
    return res


def model_device(model) -> torch.device:
    """The device of a model's parameters (CPU for a model without any)."""
    p = next(model.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


def train(cfg: TrainConfig, log=print):
    """Train per ``cfg``. Returns ``(model, result)``; the model holds the weights with the
    best validation accuracy (quantized mode), ``result`` the card fields.

    Epochs: ``cfg.epochs``, or fewer if ``cfg.time_budget`` is set and the pace so far
    (training + validation, re-planned after every epoch) says they would not fit; the cosine
    schedule spans the planned epochs. ``result["epochs"]`` is the number run."""
    check_config(cfg)
    seed_everything(cfg.seed, cfg.threads, cfg.device)
    dev = configure_device(cfg)
    x_tr, y_tr = load_dataset(cfg.dataset, "train", cfg.limit)
    x_va, y_va = load_dataset(cfg.dataset, "val", cfg.val_limit)
    x_te, y_te = load_dataset(cfg.dataset, "test", cfg.test_limit)
    model = make_model(cfg)
    steps = sim_steps(model, cfg.timesteps)
    model.to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    xt = encode(model, x_tr, cfg.input_bits).to(dev)
    yt = torch.from_numpy(y_tr).to(dev)
    gen = torch.Generator().manual_seed(int(cfg.seed))
    history = []
    best = (-1.0, None)
    t0 = time.perf_counter()
    epoch_times = []
    planned = int(cfg.epochs)
    epoch = 0
    while epoch < planned:
        epoch += 1
        te = time.perf_counter()
        lr = lr_at(cfg, epoch, planned)
        for group in opt.param_groups:
            group["lr"] = lr
        model.train()
        set_quantized(model, cfg.train_quantized)
        perm = torch.randperm(len(xt), generator=gen).to(dev)
        batches = range(0, len(xt), cfg.batch_size)
        bar = _tqdm(batches, cfg, f"epoch {epoch}/{planned}")
        loss_sum = torch.zeros((), device=dev)
        seen = 0
        for i in bar:
            if seen and cfg.time_budget is not None and time.perf_counter() - t0 > cfg.time_budget:
                planned = epoch              # out of time mid-epoch: validate and stop
                break
            idx = perm[i:i + cfg.batch_size]
            seen += len(idx)
            loss = F.cross_entropy(logits_of(model, xt[idx], steps, cfg.loss_scale), yt[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            _clamp_thresholds(model)
            loss_sum += loss.detach() * len(idx)
            if hasattr(bar, "set_postfix"):
                bar.set_postfix(loss=f"{float(loss):.3f}")
        epoch_times.append(time.perf_counter() - te)
        val = evaluate(model, x_va, y_va, cfg.timesteps, cfg.input_bits)["accuracy"]
        train_loss = float(loss_sum) / max(seen, 1)
        history.append({"epoch": epoch, "train_loss": train_loss, "val_accuracy": val,
                        "lr": lr, "samples": seen, "seconds": epoch_times[-1]})
        planned = min(planned, epoch - 1 + plan_epochs(cfg, time.perf_counter() - t0,
                                                       time.perf_counter() - te))
        if log:
            log(f"epoch {epoch}/{planned}: loss {train_loss:.4f}  val accuracy {val:.4f} "
                f"(quantized)  lr {lr:.2e}  {epoch_times[-1]:.1f}s")
        if val > best[0]:
            best = (val, copy.deepcopy(model.state_dict()))
    train_seconds = time.perf_counter() - t0
    if best[1] is not None:
        model.load_state_dict(best[1])
    test = evaluate(model, x_te, y_te, cfg.timesteps, cfg.input_bits, stats=True)
    result = {
        "dataset": cfg.dataset, "neuron": cfg.neuron, "arch": cfg.arch,
        "architecture": describe(cfg.dataset, cfg.arch),
        "timesteps": cfg.timesteps,
        "latency": getattr(model, "latency", 0) if cfg.neuron != "relu" else 0,
        "simulated_steps": steps,
        "max_burst": cfg.max_burst if cfg.neuron == "qblif" else 1,
        "seed": cfg.seed, "epochs": epoch, "device": _device_name(dev),
        "train_samples": len(x_tr), "val_samples": len(x_va), "test_samples": len(x_te),
        "best_val_accuracy": best[0],
        "test_accuracy": test["accuracy"],
        "spikes_per_neuron_step": test.get("spikes_per_neuron_step"),
        "synops_per_sample": test.get("synops_per_sample"),
        "spike_synops_per_sample": test.get("spike_synops_per_sample"),
        "input_synops_per_sample": test.get("input_synops_per_sample"),
        "train_seconds": train_seconds,
        "seconds_per_epoch": float(np.mean(epoch_times)) if epoch_times else 0.0,
        "history": history,
        "config": dataclasses.asdict(cfg),
        "thresholds": thresholds(model),
        "versions": versions(),
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    return model, result


def _device_name(dev: torch.device) -> str:
    if dev.type == "cuda":
        return f"{torch.cuda.get_device_name(dev)} (CUDA)"
    return "CPU"


def _tqdm(it, cfg, desc):
    if not cfg.progress:
        return it
    from tqdm import tqdm
    # disable=None: a bar on a terminal, silence in logs and CI (per-epoch lines remain)
    return tqdm(it, desc=desc, leave=False, dynamic_ncols=True, disable=None)


def _clamp_thresholds(model):
    """Keep learnable thresholds in the chip's range (>= 1/64, spec section 3)."""
    for b in getattr(model, "blocks", []):
        n = getattr(b, "neuron", None)
        if n is not None and callable(getattr(n, "clamp", None)):
            n.clamp()


def thresholds(model) -> dict:
    """Float thresholds of the spiking blocks (mean over channels when per-channel)."""
    out = {}
    for i, b in enumerate(getattr(model, "blocks", [])):
        n = getattr(b, "neuron", None)
        if n is None:
            continue
        th = getattr(n, "threshold", None)
        if th is None:
            continue
        th = torch.as_tensor(th).detach().float()
        out[str(i)] = float(th.mean())
    return out


def versions() -> dict:
    from importlib import metadata
    v = {"torch": torch.__version__}
    for pkg in ("lava-dl", "lava-nc", "qblif-lava"):
        try:
            v[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            v[pkg] = None
    return v


def evaluate_file(path: str, test_limit: int | None = None, threads: int = 1,
                  card: dict | None = None) -> dict:
    """Test fields of a model card (``test_accuracy``, ``test_samples``, spikes, SynOps),
    measured on the NetX file ``path`` (QB-LIF or lava-dl CUBA blocks) by SLAYER's quantized
    forward on the test split of its dataset (``card["dataset"]``, else the file's
    ``/qblif/dataset``), with the file's input bits and window T."""
    from qblif_lava.slayer.hdf5 import load_network
    from qblif_lava.slayer.neuron import Neuron
    from qblif_lava.training.models import LoadedNet
    torch.set_num_threads(int(threads))
    try:
        net = load_network(path)
    except (OSError, KeyError, ValueError) as exc:
        raise QblifError(f"cannot load {path}: {exc}") from None
    dataset = (card or {}).get("dataset") or net.dataset
    if not dataset or net.timesteps is None or net.input_bits is None:
        raise QblifError(f"{path} has no /qblif dataset, timesteps or inputBits metadata "
                         f"(not written by qblif train?)")
    qblif = any(isinstance(getattr(b, "neuron", None), Neuron) for b in net.blocks)
    model = LoadedNet(net, "qblif" if qblif else "cuba", dataset, (card or {}).get("arch"),
                      dataset_input_shape(dataset))
    x, y = load_dataset(dataset, "test", test_limit)
    r = evaluate(model, x, y, int(net.timesteps), int(net.input_bits), stats=True)
    return {"dataset": dataset, "test_samples": r["samples"], "test_accuracy": r["accuracy"],
            "spikes_per_neuron_step": r["spikes_per_neuron_step"],
            "synops_per_sample": r["synops_per_sample"],
            "spike_synops_per_sample": r["spike_synops_per_sample"],
            "input_synops_per_sample": r["input_synops_per_sample"]}


# ----------------------------------------------------------------------------- output files

def check_writable(out: str) -> None:
    """Raise :class:`QblifError` unless ``out`` (and its card files) can be written: the
    directory must exist and accept a new file; ``out`` must not be a directory."""
    problem = writable_problem(out)
    if problem:
        raise QblifError(f"cannot write --out {out}: {problem}")
    for p in card_paths(out):
        if os.path.isdir(p):
            raise QblifError(f"cannot write the model card {p}: it is a directory")


def card_paths(out: str):
    """``NAME.json`` and ``NAME.md`` beside ``NAME.net``."""
    stem = out[:-4] if out.endswith(".net") else out
    return stem + ".json", stem + ".md"


def export(model, cfg: TrainConfig, out: str) -> None:
    """Write the NetX HDF5 file ``out`` (atomic) with ``qblif_lava.slayer.hdf5.export_network``
    (QB-LIF or stock lava-dl CUBA blocks, ``/qblif`` metadata, docs/netx_format.md)."""
    if cfg.neuron == "relu":
        raise QblifError("a ReLU network has no NetX export")
    blocks = list(model.blocks)
    kwargs = dict(input_shape=model.net_input_shape, input_bits=cfg.input_bits,
                  timesteps=cfg.timesteps, dataset=cfg.dataset)
    from qblif_lava.slayer.hdf5 import export_network
    model.cpu()
    set_quantized(model, True)
    export_network(blocks, out, **kwargs)


def write_card(result: dict, out: str, note: str | None = None) -> None:
    """Write ``NAME.json`` and ``NAME.md`` beside ``out`` (atomic)."""
    jpath, mpath = card_paths(out)
    res = dict(result, file=os.path.basename(out))
    if note:
        res["note"] = note
    atomic_write_text(jpath, json.dumps(res, indent=2, sort_keys=False) + "\n")
    atomic_write_text(mpath, card_markdown(res))


def _fmt(v, spec):
    return "n/a" if v is None else format(v, spec)


def card_markdown(r: dict) -> str:
    c = r["config"]
    lines = [
        f"# {r['file']}",
        "",
        f"{r['neuron'].upper()} network on {r['dataset']}, trained with lava-dl SLAYER "
        f"({'QB-LIF blocks of qblif_lava.slayer' if r['neuron'] == 'qblif' else 'lava-dl CUBA blocks'}).",
        "",
        "| field | value |",
        "|---|---|",
        f"| dataset | {r['dataset']} (train {r['train_samples']}, val {r['val_samples']}, "
        f"test {r['test_samples']} samples) |",
        f"| architecture | {r['arch']}: {r['architecture']} |",
        f"| neuron | {r['neuron']} ("
        + (f"K = max burst = {r['max_burst']}, reset {c['reset_mode']}, learned threshold, initial "
           if r['neuron'] == 'qblif' else "binary spikes, lava-dl reset, fixed ")
        + f"threshold {c['threshold']}, current decay {c['current_decay']}, "
        f"voltage decay {c['voltage_decay']}) |",
        f"| timesteps T | {r['timesteps']} input steps; simulated {r['simulated_steps']} "
        f"(= T + latency {r['latency']}) |",
        f"| input | direct graded, {c['input_bits']} bits |",
        f"| seed / epochs | {r['seed']} / {r['epochs']} (batch {c['batch_size']}, Adam lr {c['lr']}"
        f"{', ' + c['lr_schedule'] if c.get('lr_schedule') else ''}) |",
        f"| **test accuracy (quantized)** | **{r['test_accuracy'] * 100:.2f}%** |",
        f"| best val accuracy (quantized) | {r['best_val_accuracy'] * 100:.2f}% |",
        f"| spikes / neuron / step | {_fmt(r['spikes_per_neuron_step'], '.4f')} |",
        f"| SynOps / sample, total (unit events x fan-out) | {_fmt(r['synops_per_sample'], ',.0f')} |",
        f"| of which spike SynOps (hidden/output layers) | {_fmt(r['spike_synops_per_sample'], ',.0f')} |",
        f"| of which input SynOps (graded input x fan-out) | {_fmt(r['input_synops_per_sample'], ',.0f')} |",
        f"| training time | {r['train_seconds']:.1f} s ({r['seconds_per_epoch']:.1f} s/epoch on "
        f"{r.get('device') or 'CPU'}, {c['threads']} CPU thread(s)"
        + (f", time budget {c['time_budget']:.0f} s" if c.get('time_budget') else "") + ") |",
        "| versions | " + ", ".join(f"{k} {v}" for k, v in r["versions"].items()) + " |",
        f"| created | {r['created']} |",
        "",
        "Loss: cross-entropy on the output spike counts summed over the simulated steps. "
        "Accuracy and statistics are measured on the test split in quantized mode.",
    ]
    if r.get("note"):
        lines += ["", r["note"]]
    lines += ["", "| epoch | lr | train loss | val accuracy | seconds |", "|---|---|---|---|---|"]
    for h in r["history"]:
        lr = f"{h['lr']:.2e}" if h.get("lr") is not None else "-"
        lines.append(f"| {h['epoch']} | {lr} | {h['train_loss']:.4f} | "
                     f"{h['val_accuracy'] * 100:.2f}% | {h['seconds']:.1f} |")
    return "\n".join(lines) + "\n"
