"""Output files of a training run: the NetX model ``NAME.net`` and its card ``NAME.json``,
``NAME.md`` (linking) ``NAME.png`` (training curves), written as a unit (all or none,
:func:`qblif.core.fileio.write_together`), and the checks on ``out`` made before training.

Imports torch and lava-dl only where a model is exported (``qblif evaluate`` reads and
writes cards without them).
"""
from __future__ import annotations

import datetime  # noqa: F401  (re-exported through train.py for older callers)
import json
import os
import shutil
import tempfile

from qblif.core.constants import MAX_CARD_BYTES
from qblif.core.errors import ModelFileError, QblifError
from qblif.core.fileio import writable_problem, write_together

MODEL_SUFFIX = ".net"


def stem_of(out: str) -> str:
    """``NAME`` of ``NAME.net`` (``out`` itself without that suffix)."""
    return out[:-len(MODEL_SUFFIX)] if out.endswith(MODEL_SUFFIX) else out


def card_paths(out: str):
    """``NAME.json`` and ``NAME.md`` beside ``NAME.net``."""
    stem = stem_of(out)
    return stem + ".json", stem + ".md"


def read_card(path: str) -> dict:
    """The model card ``NAME.json`` at ``path``: a JSON object of at most ``MAX_CARD_BYTES``
    (an untrusted file: anything else is one :class:`ModelFileError` naming it, exit 2)."""
    size = os.path.getsize(path)
    if size > MAX_CARD_BYTES:
        raise ModelFileError(f"{path}: model card of {size:,} bytes (limit {MAX_CARD_BYTES:,})")
    try:
        with open(path, "rb") as f:
            card = json.loads(f.read())
    except (ValueError, RecursionError) as exc:    # bad JSON, bad UTF-8, 10^5-digit ints
        raise ModelFileError(f"{path}: not a JSON model card ({' '.join(str(exc).split())[:120]})") \
            from None
    if not isinstance(card, dict):
        raise ModelFileError(f"{path}: a model card is a JSON object, not {type(card).__name__}")
    return card


def output_paths(out: str) -> dict:
    """Every file a run writes for ``out``: ``net``, ``json``, ``md``, ``png`` (training curves)
    and ``ckpt`` (the checkpoint, kept until the run's outputs are written)."""
    stem = stem_of(out)
    return {"net": out, "json": stem + ".json", "md": stem + ".md", "png": stem + ".png",
            "ckpt": stem + ".ckpt"}


def is_model_file(path: str) -> bool:
    """Whether ``path`` is a NetX HDF5 file (an HDF5 file with a ``/layer`` group), i.e. one
    that ``qblif train`` may replace without ``force``."""
    try:
        import h5py
        if not h5py.is_hdf5(path):
            return False
        with h5py.File(path, "r") as f:
            return "layer" in f
    except (OSError, ValueError):
        return False


def check_out(out: str, force: bool = False) -> None:
    """Raise :class:`QblifError` (one line) unless the model ``out`` and its card can be
    written, before any training: ``out`` must name a file (not end in ``/``, not be a
    directory) in an existing, writable directory; an existing ``out`` that is not a NetX
    model, or card files beside an ``out`` that does not exist yet, are replaced only with
    ``force`` (``--force``)."""
    if out.endswith(("/", os.sep)) or os.path.basename(out) in ("", ".", ".."):
        raise QblifError(f"cannot write {out}: it names a directory, not a model file "
                         f"(give a file name such as {os.path.join(out, 'NAME.net')})")
    problem = writable_problem(out)
    if problem:
        raise QblifError(f"cannot write {out}: {problem}")
    paths = output_paths(out)
    for key in ("json", "md", "png", "ckpt"):
        if os.path.isdir(paths[key]):
            raise QblifError(f"cannot write the model card {paths[key]}: it is a directory")
    if force:
        return
    if os.path.lexists(out):
        if not is_model_file(out):
            raise QblifError(f"{out} exists and is not a NetX model: pass --force (force=True) "
                             f"to replace it")
        return
    for key in ("json", "md", "png"):
        if os.path.lexists(paths[key]):
            raise QblifError(f"{paths[key]} exists but {out} does not: pass --force "
                             f"(force=True) to replace it")


check_writable = check_out          # the earlier name


def export_to(model, cfg, path: str) -> None:
    """Write the blocks of ``model`` as the NetX HDF5 file ``path`` (no rename: the caller's
    temporary name) with ``/qblif`` metadata (docs/netx_format.md).

    HDF5 is written in the system's temporary directory first and then copied to ``path``
    with plain file I/O: HDF5 on a full disk prints errors from its destructors and can
    crash the process; a plain write fails with one ``OSError`` (ENOSPC)."""
    if cfg.neuron == "relu":
        raise QblifError("a ReLU network has no NetX export")
    from qblif.training.slayer.hdf5 import export_network
    from qblif.training.models import set_quantized
    model.cpu()
    set_quantized(model, True)
    with tempfile.TemporaryDirectory(prefix="qblif-export-") as d:
        staged = os.path.join(d, "model.net")
        export_network(list(model.blocks), staged, input_shape=model.net_input_shape,
                       input_bits=cfg.input_bits, timesteps=cfg.timesteps, dataset=cfg.dataset)
        shutil.copyfile(staged, path)


def export(model, cfg, out: str) -> None:
    """Write the NetX HDF5 file ``out`` alone (atomic; :class:`~qblif.core.fileio.WriteError`
    naming ``out`` on a full or unwritable disk)."""
    write_together([(out, lambda tmp: export_to(model, cfg, tmp))])


def _card_json(result: dict, out: str, note: str | None) -> dict:
    res = dict(result, file=os.path.basename(out))
    if note:
        res["note"] = note
    return res


def _text_writer(text: str):
    def write(tmp):
        with open(tmp, "w") as f:
            f.write(text)
    return write


def write_card(result: dict, out: str, note: str | None = None) -> None:
    """Write ``NAME.json`` and ``NAME.md`` beside ``out``, together (atomic, both or neither)."""
    jpath, mpath = card_paths(out)
    res = _card_json(result, out, note)
    write_together([(jpath, _text_writer(json.dumps(res, indent=2, sort_keys=False) + "\n")),
                    (mpath, _text_writer(card_markdown(res)))])


def write_outputs(model, cfg, result: dict, out: str, note: str | None = None,
                  curves: bool = True) -> dict:
    """Write the model ``out`` (NetX), its card ``NAME.json``/``NAME.md`` and, with ``curves``,
    the training-curves figure ``NAME.png`` (linked from the card) as a unit: all files are
    complete before any is renamed into place; a full or unwritable disk raises
    :class:`~qblif.core.fileio.WriteError` naming the path and leaves the old files (if any)
    untouched. Returns the paths written."""
    paths = output_paths(out)
    result = dict(result, file=os.path.basename(out))
    items = [(out, lambda tmp: export_to(model, cfg, tmp))]
    if curves:
        from qblif.training.curves import curves_png
        png = curves_png(result)
        result["curves"] = os.path.basename(paths["png"])

        def write_png(tmp):
            with open(tmp, "wb") as f:
                f.write(png)
        items.append((paths["png"], write_png))
    res = _card_json(result, out, note)
    items += [(paths["json"], _text_writer(json.dumps(res, indent=2, sort_keys=False) + "\n")),
              (paths["md"], _text_writer(card_markdown(res)))]
    write_together(items)
    return {k: paths[k] for k in ("net", "json", "md") + (("png",) if curves else ())}


def versions() -> dict:
    """Versions of torch, lava-dl, lava-nc and qblif-lava (recorded in the card)."""
    from importlib import metadata

    import torch
    v = {"torch": torch.__version__}
    for pkg in ("lava-dl", "lava-nc", "qblif-lava"):
        try:
            v[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            v[pkg] = None
    return v


def _fmt(v, spec):
    return "n/a" if v is None else format(v, spec)


def card_markdown(r: dict) -> str:
    """The Markdown card of a result (``NAME.md``)."""
    c = r["config"]
    impl = c.get("cuba_impl", "lava-dl")
    blocks = ("QB-LIF blocks of qblif.training.slayer" if r["neuron"] == "qblif" else
              "QB-LIF blocks with K = 1 and reset zero (lava-dl CUBA dynamics, plain torch)"
              if impl == "qblif" else "lava-dl CUBA blocks")
    world = r.get("world_size", 1)
    lines = [
        f"# {r['file']}",
        "",
        f"{r['neuron'].upper()} network on {r['dataset']}, trained with lava-dl SLAYER "
        f"({blocks}).",
        "",
        "| field | value |",
        "|---|---|",
        f"| dataset | {r['dataset']} (train {r['train_samples']}, val {r['val_samples']}, "
        f"test {r['test_samples']} samples) |",
        f"| architecture | {r['arch']}: {r['architecture']} |",
        f"| neuron | {r['neuron']} ("
        + (f"K = max burst = {r['max_burst']}, reset {c['reset_mode']}, learned threshold, initial "
           if r['neuron'] == 'qblif' else "binary spikes, reset zero, fixed " if impl == "qblif"
           else "binary spikes, lava-dl reset, fixed ")
        + f"threshold {c['threshold']}, current decay {c['current_decay']}, "
        f"voltage decay {c['voltage_decay']}"
        + (f"; exported iDecay {r['device_params']['iDecay']}, vDecay {r['device_params']['vDecay']}"
           if r.get("device_params") else "") + ") |",
        f"| timesteps T | {r['timesteps']} input steps; " + (
            f"simulated on each layer's T-step window (feed-forward; chip latency {r['latency']}) |"
            if r['simulated_steps'] == r['timesteps'] else
            f"simulated {r['simulated_steps']} (= T + latency {r['latency']}) |"),
        f"| input | direct graded, {c['input_bits']} bits |",
        "| augmentation | " + (", ".join(
            ([f"random crop (zero padding {c['crop_pad']} px)"] if c.get("crop_pad") else [])
            + (["horizontal flip (p = 1/2)"] if c.get("hflip") else [])) or "none") + " |",
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
        + (f" per process, {world} processes (DDP)" if world > 1 else "")
        + (f", time budget {c['time_budget']:.0f} s" if c.get('time_budget') else "")
        + (f", resumed {r['resumed']} time(s)" if r.get('resumed') else "") + ") |",
        "| versions | " + ", ".join(f"{k} {v}" for k, v in r["versions"].items()) + " |",
        f"| created | {r['created']} |",
        "",
        "Loss: cross-entropy on the output spike counts summed over the simulated steps. "
        "Accuracy and statistics are measured on the test split in quantized mode.",
    ]
    if r.get("note"):
        lines += ["", r["note"]]
    if r.get("curves"):
        lines += ["", f"![training curves: loss, validation accuracy, spikes per neuron per step "
                      f"and thresholds per layer, by epoch]({r['curves']})"]
    lines += ["", "| epoch | lr | train loss | val accuracy | seconds |", "|---|---|---|---|---|"]
    for h in r["history"]:
        lr = f"{h['lr']:.2e}" if h.get("lr") is not None else "-"
        lines.append(f"| {h['epoch']} | {lr} | {h['train_loss']:.4f} | "
                     f"{h['val_accuracy'] * 100:.2f}% | {h['seconds']:.1f} |")
    return "\n".join(lines) + "\n"
