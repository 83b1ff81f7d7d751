"""``qblif train``: train a QB-LIF or CUBA network with SLAYER, export NetX HDF5 and a
model card (``NAME.json``, ``NAME.md``) beside it. Registered by :mod:`qblif.cli.main`.

Everything that can be checked (ranges, dataset files, that ``--out`` is writable) is
checked before training starts; problems are one line on stderr and a non-zero exit.
The model and its card (``.net``, ``.json``, ``.md``, ``.png``) are written as a unit;
``NAME.ckpt`` is the run's checkpoint (every epoch, and on Ctrl-C / SIGTERM /
``--stop-after``), removed once the outputs are written; ``--resume NAME.ckpt`` continues a
run. ``--nproc N`` runs data-parallel on N processes (torchrun). Exit status: 0 done, 1 an
error, 2 a bad argument, 3 stopped with a checkpoint to resume.
"""
from __future__ import annotations

import sys

from qblif.core.data import DATASETS
from qblif.core.errors import QblifError
from qblif.training.config import ARCHS as ARCH_CHOICES

from qblif.core.reference import RESET_MODES  # noqa: E402
from qblif.training.config import CUBA_IMPLS, LR_SCHEDULES  # noqa: E402
from qblif.training.config import SPIKING as NEURON_CHOICES  # noqa: E402
#: options that --resume takes from the checkpoint (giving one with --resume is refused)
RESUME_FROM_CHECKPOINT = ("dataset", "neuron", "arch", "timesteps", "max_burst", "epochs", "seed",
                          "lr", "batch_size", "limit", "val_limit", "test_limit", "threshold",
                          "current_decay", "voltage_decay", "reset_mode", "per_channel",
                          "fixed_threshold", "input_bits", "loss_scale", "lr_schedule", "threads",
                          "cuba_impl", "crop_pad", "hflip")
EVAL_ENGINES = ("auto", "exact", "slayer")


def register(sub):
    register_evaluate(sub)
    p = sub.add_parser(
        "train", help="train a QB-LIF or CUBA network with SLAYER and export NetX HDF5",
        description="Train a spiking network with lava-dl SLAYER (loss: cross-entropy on output "
                    "spike counts), export it as NetX HDF5 and write NAME.json / NAME.md beside it.")
    p.add_argument("--dataset", default=None,
                   help=f"one of: {', '.join(DATASETS)} (required unless --resume)")
    p.add_argument("--neuron", choices=NEURON_CHOICES, default="qblif")
    p.add_argument("--arch", choices=ARCH_CHOICES, default="mlp",
                   help="mlp, conv, or deep (two 3x3 convs before each pool; fashion-mnist: "
                        "32c3-32c3-p2-64c3-64c3-p2-256-10)")
    p.add_argument("--timesteps", type=int, default=4,
                   help="input window T in steps; the network is simulated T + latency steps")
    p.add_argument("--max-burst", type=int, default=4, help="K, spikes per burst, 1..255 (QB-LIF)")
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--lr", type=float, default=3e-3, help="Adam learning rate")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--limit", type=int, default=None, help="use the first N training samples")
    p.add_argument("--val-limit", type=int, default=None, help="use the first N validation samples")
    p.add_argument("--test-limit", type=int, default=None, help="use the first N test samples")
    p.add_argument("--threshold", type=float, default=None,
                   help="initial threshold in float weight units (vThMant = 64x); "
                        "default 2.0 (mlp) or 1.0 (conv)")
    p.add_argument("--current-decay", type=float, default=1.0,
                   help="fraction: iDecay = 4096 x this, in [1/4096, 1] (default 1.0)")
    p.add_argument("--voltage-decay", type=float, default=0.0,
                   help="fraction: vDecay = 4096 x this, in [0, 4095/4096] (default 0.0)")
    p.add_argument("--reset-mode", choices=RESET_MODES, default="subtract")
    p.add_argument("--per-channel", action="store_true", help="learn one threshold per channel")
    p.add_argument("--fixed-threshold", action="store_true", help="do not learn the threshold")
    p.add_argument("--input-bits", type=int, default=4)
    p.add_argument("--loss-scale", type=float, default=None,
                   help="logits = output spike counts x this; default 1/K (QB-LIF) or 1 (CUBA)")
    p.add_argument("--lr-schedule", choices=LR_SCHEDULES, default="cosine",
                   help="per-epoch learning rate: cosine from --lr towards 0, or constant")
    p.add_argument("--time-budget", type=float, default=None, metavar="SECONDS",
                   help="run at most --epochs epochs, fewer if the pace so far (training + "
                        "validation, counted over resumed invocations too) says they would not "
                        "fit in SECONDS")
    p.add_argument("--device", default="cpu",
                   help="cpu (default, deterministic), cuda or cuda:N (lava-dl CUBA JIT-compiles "
                        "its CUDA kernel on first use)")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (results depend on it)")
    p.add_argument("--no-progress", action="store_true", help="no tqdm progress bar")
    p.add_argument("--cuba-impl", choices=CUBA_IMPLS, default="lava-dl",
                   help="--neuron cuba: lava-dl's CUBA blocks (CUDA kernels on a GPU), or ours "
                        "(QB-LIF K=1, reset zero: the same forward in plain torch)")
    p.add_argument("--crop-pad", type=int, default=0, metavar="PIXELS",
                   help="augmentation: random crop of the image zero-padded by PIXELS (0: off)")
    p.add_argument("--hflip", action="store_true",
                   help="augmentation: horizontal flip with probability 1/2")
    p.add_argument("--out", required=True, help="output file, e.g. netx_models/NAME.net")
    p.add_argument("--force", action="store_true",
                   help="replace an existing --out that is not a NetX model (or stray card files)")
    p.add_argument("--checkpoint", default=None, metavar="CKPT",
                   help="checkpoint path (default NAME.ckpt beside --out)")
    p.add_argument("--resume", default=None, metavar="CKPT",
                   help="continue the run saved in CKPT, with its configuration")
    p.add_argument("--stop-after", type=float, default=None, metavar="SECONDS",
                   help="checkpoint and stop (exit 3) after SECONDS; continue with --resume")
    p.add_argument("--nproc", type=int, default=1,
                   help="data-parallel processes on this host (torchrun; gloo on CPU, nccl on "
                        "CUDA); --batch-size is the global batch")
    p.set_defaults(func=run, train_parser=p)


def config_from_args(args):
    from qblif.training.train import TrainConfig
    threshold = args.threshold if args.threshold is not None else (2.0 if args.arch == "mlp" else 1.0)
    return TrainConfig(
        dataset=args.dataset, neuron=args.neuron, arch=args.arch, timesteps=args.timesteps,
        max_burst=args.max_burst, epochs=args.epochs, seed=args.seed, lr=args.lr,
        batch_size=args.batch_size, limit=args.limit, val_limit=args.val_limit,
        test_limit=args.test_limit, threshold=threshold, current_decay=args.current_decay,
        voltage_decay=args.voltage_decay, reset_mode=args.reset_mode,
        per_channel=args.per_channel, learn_threshold=not args.fixed_threshold,
        input_bits=args.input_bits,
        loss_scale=args.loss_scale if args.loss_scale is not None else (
            1.0 / args.max_burst if args.neuron == "qblif" else 1.0),
        lr_schedule=args.lr_schedule, time_budget=args.time_budget, device=args.device,
        threads=args.threads, progress=not args.no_progress, cuba_impl=args.cuba_impl,
        crop_pad=args.crop_pad, hflip=args.hflip)


def option_of(field: str) -> str:
    """The ``qblif train`` option of a :class:`TrainConfig` field."""
    return "--" + {"learn_threshold": "fixed-threshold"}.get(field, field).replace("_", "-")


def as_option_error(exc):
    """A :class:`~qblif.training.config.ConfigError` reworded with the CLI option
    (``current_decay=2.0 is ...`` -> ``--current-decay 2.0 is ...``)."""
    field = getattr(exc, "field", None)
    msg = str(exc)
    if field and msg.startswith(field + "="):
        value = msg[len(field) + 1:].split(" ", 1)
        msg = f"{option_of(field)} {value[0].strip(chr(39))} {value[1] if len(value) > 1 else ''}"
    return QblifError(msg.strip())


def _resume_config(args, parser):
    """The checkpoint's config, with this call's --time-budget, --device, --no-progress."""
    import dataclasses
    from qblif.training.loop import config_of_checkpoint
    given = [k for k in RESUME_FROM_CHECKPOINT
             if parser is not None and getattr(args, k) != parser.get_default(k)]
    if given:
        raise QblifError(f"--resume {args.resume} takes the configuration from the checkpoint: "
                         f"drop {', '.join(option_of(k) for k in given)}")
    cfg = config_of_checkpoint(args.resume)
    return dataclasses.replace(cfg, time_budget=args.time_budget, device=args.device,
                               progress=not args.no_progress)


def run(args) -> int:
    import os
    # cheap checks first: no torch import before the arguments are known to be sane
    if args.resume is None:
        if args.dataset is None:
            raise QblifError("--dataset is required (unless --resume CKPT)")
        if args.dataset not in DATASETS:
            raise QblifError(f"unknown dataset {args.dataset!r}: choose one of {', '.join(DATASETS)}")
        if not 1 <= args.max_burst <= 255:
            raise QblifError(f"--max-burst {args.max_burst} is out of range: allowed [1, 255]")
    if args.nproc < 1:
        raise QblifError(f"--nproc {args.nproc} is invalid: expected >= 1")
    if args.stop_after is not None and not args.stop_after > 0:
        raise QblifError(f"--stop-after {args.stop_after} is invalid: expected > 0 seconds")
    from qblif.training import distributed
    parser = getattr(args, "train_parser", None)
    from qblif.training import train as tr
    from qblif.training.config import ConfigError
    try:
        cfg = _resume_config(args, parser) if args.resume else config_from_args(args)
        tr.check_config(cfg)
    except ConfigError as exc:
        raise as_option_error(exc) from None
    writer = int(os.environ.get("RANK", "0")) == 0
    if not writer or distributed.launched():     # torchrun's ranks: their launcher holds it
        return _train(args, cfg, parser, writer)
    from qblif.core.fileio import exclusive
    tr.check_out(args.out, force=args.force)     # a bad --out: its own message, before the lock
    with exclusive(args.out):      # a second run on the same --out is refused, never mixed
        return _train(args, cfg, parser, writer)


def _train(args, cfg, parser, writer: bool) -> int:
    """``qblif train`` after the arguments are checked (the rank-0 caller holds the lock
    of ``--out``): check the outputs, train, write the model and its card as a unit."""
    import os

    from qblif.core.data import load_dataset
    from qblif.training import distributed
    from qblif.training import train as tr
    if writer:
        tr.check_out(args.out, force=args.force)
    for split in ("train", "val", "test"):          # DataError now, not after an epoch
        load_dataset(cfg.dataset, split, 1)
    if cfg.neuron == "qblif" or cfg.cuba_impl == "qblif":
        try:
            import qblif.training.slayer  # noqa: F401
        except ImportError as exc:
            raise QblifError(f"the QB-LIF SLAYER blocks are not available ({exc})") from None
    if args.nproc > 1 and not distributed.launched():    # every check above passed: launch
        return distributed.launch(args.nproc, argv_of(args, parser, skip=("nproc",)))
    ckpt = args.checkpoint or tr.output_paths(args.out)["ckpt"]
    model, result = tr.train(cfg, log=lambda m: print(m, file=sys.stderr), checkpoint=ckpt,
                             resume=args.resume, stop_after=args.stop_after)
    if result is None:                               # a DDP rank other than 0: rank 0 writes
        distributed.finish()
        return 0
    from qblif.core.fileio import WriteError
    try:
        tr.write_outputs(model, cfg, result, args.out)
    except WriteError as exc:
        exc.after_training = True          # the other ranks are done (see __main__)
        raise
    distributed.finish()
    if os.path.exists(ckpt):
        os.remove(ckpt)
    ms = result["spikes_per_neuron_step"]
    print(f"{args.out}: test accuracy {result['test_accuracy'] * 100:.2f}% (quantized), "
          f"{ms:.4f} spikes/neuron/step, {result['synops_per_sample']:,.0f} SynOps/sample "
          f"({result['spike_synops_per_sample']:,.0f} from spikes), "
          f"trained in {result['train_seconds']:.1f} s"
          + (f" on {result['world_size']} processes" if result.get("world_size", 1) > 1 else ""))
    return 0


def argv_of(args, parser, skip=()) -> list:
    """The ``qblif train`` command line that gives ``args`` (options at their default
    left out, ``skip`` dests dropped): what ``--nproc`` hands to each torchrun process."""
    argv = []
    for a in parser._actions:
        if not a.option_strings or a.dest in skip or a.dest == "help":
            continue
        v = getattr(args, a.dest, None)
        if v == a.default:
            continue
        if a.nargs == 0:                          # store_true
            argv.append(a.option_strings[-1])
        else:
            argv += [a.option_strings[-1], str(v)]
    return argv


def register_evaluate(sub):
    p = sub.add_parser(
        "evaluate", help="measure a NetX model's test accuracy, spikes and SynOps (quantized)",
        description="Load a NetX HDF5 model written by 'qblif train' (QB-LIF or CUBA), run its "
                    "exact integer forward over the test split of its dataset and print accuracy, "
                    "spikes/neuron/step and SynOps/sample, as the model card defines them. "
                    "Engines: the compiler's batched exact engine (fast), or SLAYER's quantized "
                    "forward; both compute the same integers.")
    p.add_argument("model", help="NAME.net (its card NAME.json, if present, names the dataset)")
    p.add_argument("--test-limit", type=int, default=None, help="first N test samples (default all)")
    p.add_argument("--engine", choices=EVAL_ENGINES, default="auto",
                   help="exact: the compiled network through the batched exact engine "
                        "(docs/exact_engine.md); slayer: SLAYER's quantized forward; auto "
                        "(default): exact, or slayer where the engine cannot stand for it "
                        "(a bias)")
    p.add_argument("--threads", type=int, default=None,
                   help="torch CPU threads (default: every core for exact, 1 for slayer)")
    p.add_argument("--update-card", action="store_true",
                   help="write the measured test fields into NAME.json / NAME.md (implies "
                        "--latency-window: the card's definitions)")
    p.add_argument("--latency-window", action="store_true",
                   help="exact engine: simulate SLAYER's T + latency steps per image and count "
                        "spikes and SynOps over them, as the model card does (default: T "
                        "steps where each layer's T-step window needs no more, "
                        "qblif.schedule.t_step_refusal; the accuracy is the same)")
    p.set_defaults(func=run_evaluate)


def _evaluate(args, card):
    """The card fields by the chosen engine (see ``register_evaluate``)."""
    if args.threads is not None and args.threads < 1:
        raise QblifError(f"--threads {args.threads} is invalid: expected >= 1")
    if args.engine != "slayer":
        # the CLI layer may use the compiler; the training library never imports it
        from qblif.exact.evaluate import EngineRefused, evaluate_file
        try:
            latency = True if args.update_card or args.latency_window else None
            return evaluate_file(args.model, test_limit=args.test_limit, threads=args.threads,
                                 card=card, latency_window=latency)
        except EngineRefused as exc:
            if args.engine == "exact":
                raise
            print(f"qblif evaluate: SLAYER's forward, not the exact engine: {exc.reason}",
                  file=sys.stderr)
    from qblif.training import train as tr
    return tr.evaluate_file(args.model, test_limit=args.test_limit, threads=args.threads or 1,
                            card=card)


def run_evaluate(args) -> int:
    import os

    # card.py, not train.py: the exact engine needs neither lava-dl nor the training loop
    # (their import took 4-7 s of a 21 s full-test-set evaluation)
    from qblif.training import card as tr
    if not os.path.isfile(args.model):
        raise QblifError(f"model file {args.model} does not exist")
    if args.test_limit is not None and args.test_limit < 1:
        raise QblifError(f"--test-limit {args.test_limit} is invalid: expected >= 1")
    jpath, _ = tr.card_paths(args.model)
    if not args.update_card:
        _report(args, _evaluate(args, tr.read_card(jpath) if os.path.isfile(jpath) else None))
        return 0
    if not os.path.isfile(jpath):
        raise QblifError(f"--update-card: no model card {jpath} beside {args.model}")
    from qblif.core.fileio import exclusive
    with exclusive(args.model, "updating the card of"):   # a second one is refused
        card = tr.read_card(jpath)
        res = _evaluate(args, card)
        _report(args, res)
        was = card.get("test_accuracy")
        card.update({k: v for k, v in res.items() if k != "dataset"})
        note = card.pop("note", None)
        card.pop("file", None)
        tr.write_card(card, args.model, note=note)
    print(f"updated {jpath} (test accuracy was {was})")
    return 0


def _report(args, res: dict) -> None:
    """One line: accuracy, spikes and SynOps, and over which steps they were counted."""
    windows = res.pop("windows", "T + latency")     # SLAYER's evaluate: T + latency steps
    print(f"{args.model}: test accuracy {res['test_accuracy'] * 100:.2f}% on "
          f"{res['test_samples']} {res['dataset']} test images (quantized), "
          f"{res['spikes_per_neuron_step']:.4f} spikes/neuron/step, "
          f"{res['synops_per_sample']:,.0f} SynOps/sample "
          f"({'T-step windows' if windows == 'T' else 'the whole T + latency run: axonal delays'})")
