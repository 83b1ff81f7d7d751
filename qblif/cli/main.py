"""The ``qblif`` command line: ``demo``, ``train``, ``evaluate``, ``compile``, ``run``,
``export-nir``, ``map``, ``compare``.

Each sub-command lives in the module that owns it and exposes ``register(subparsers)``;
this file only wires them, importing just the module of the command that runs (``qblif
--help`` imports nothing heavy), and turns user-facing errors into one line on stderr and
a non-zero exit code, never a traceback:

- :class:`qblif.core.errors.QblifError` (a rejected file: 2), ``ValueError``, ``OSError``,
  a dead Lava worker (:class:`qblif.lava.session.WorkerDied`): 1;
- Ctrl-C (SIGINT): 130; SIGTERM: 143; SIGHUP: 129 (128 + signal), at any point, also while
  the modules load. Lava workers are stopped and temporary files removed first
  (:mod:`qblif.lava.session`, docs/hardening.md).
"""
from __future__ import annotations

import sys

from qblif.core import interrupts   # standard library only: Ctrl-C is handled from here on

if __name__ == "__main__":          # ``python -m qblif.cli.main``: held until main() can report
    interrupts.install()

import argparse    # noqa: E402
import importlib   # noqa: E402
import os          # noqa: E402
import signal      # noqa: E402

# torch's OpenMP threads sleep instead of spinning between parallel regions: on a shared or
# busy machine, spinning threads of a 2-thread run took 3-5x its wall time (the exact engine,
# bench/bench_engine.py). Must be set before torch loads (the command modules import it).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from qblif.core.errors import QblifError

# command -> (module that registers it, one-line help shown by ``qblif --help``)
COMMANDS = {
    "demo": ("qblif.cli.demo",
             "train on digits, export, compile, run in Lava, compare with SLAYER"),
    "train": ("qblif.cli.train",
              "train a QB-LIF or CUBA network with SLAYER and export NetX HDF5"),
    "evaluate": ("qblif.cli.train",
                 "measure a NetX model's test accuracy, spikes and SynOps (SLAYER, quantized)"),
    "compile": ("qblif.cli.compile", "compile a NetX HDF5 model and print its resource report"),
    "run": ("qblif.cli.compile", "run a compiled model on test images in Lava (CPU)"),
    "export-nir": ("qblif.cli.compile", "write a NetX model as a NIR graph (docs/nir.md)"),
    "map": ("qblif.cli.map", "map a model on Loihi 2 cores: pieces, cores, binding limits, "
            "time, energy (docs/mapping.md)"),
    "compare": ("qblif.cli.compare", "run two models on the same test samples in Lava: accuracy, "
                "spikes, SynOps, burst histograms (table, --plot figure)"),
}
COMMAND_MODULES = tuple(dict.fromkeys(m for m, _ in COMMANDS.values()))
EPILOG = """examples:
  qblif demo                                          # the whole pipeline on digits
  qblif train --dataset digits --out out/m.net        # train, export, write the card
  qblif evaluate out/m.net                            # accuracy of a model file
  qblif compile netx_models/digits_qblif_mlp.net      # resource report
  qblif map netx_models/fmnist_qblif_conv.net --plot map.png   # cores on Loihi 2
  qblif run netx_models/digits_qblif_mlp.net --dataset digits --samples 20
'qblif COMMAND --help' shows each command's options. Exit codes: 0 ok, 1 error,
2 rejected model file or resource limit, 130/143/129 interrupted by SIGINT/SIGTERM/SIGHUP."""


# one example per command, shown under its --help (unless the command sets its own epilog)
EXAMPLES = {
    "demo": "qblif demo --epochs 5 --samples 100",
    "train": "qblif train --dataset digits --neuron qblif --timesteps 4 --max-burst 4 "
             "--epochs 5 --out out/digits.net",
    "evaluate": "qblif evaluate netx_models/digits_qblif_mlp.net --test-limit 200",
    "compile": "qblif compile netx_models/digits_qblif_mlp.net",
    "run": "qblif run netx_models/digits_qblif_mlp.net --dataset digits --samples 20",
    "export-nir": "qblif export-nir netx_models/digits_qblif_mlp.net digits.nir",
    "compare": "qblif compare netx_models/digits_qblif_mlp.net out/digits_cuba.net "
               "--dataset digits --samples 100 --plot compare.png",
}


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Wraps each line of descriptions and epilogs, keeping their line breaks; appends
    ``(default: X)`` to an option's help unless its default is None/False or the help
    already names it."""

    def _fill_text(self, text, width, indent):
        import textwrap
        return "\n".join(textwrap.fill(line, width, initial_indent=indent,
                                        subsequent_indent=indent) if line.strip() else ""
                         for line in text.splitlines())

    def _get_help_string(self, action):
        text = action.help or ""
        if "default" not in text and action.default not in (None, False, argparse.SUPPRESS) \
                and action.option_strings:
            text += " (default: %(default)s)"
        return text


class _Parser(argparse.ArgumentParser):
    """Sub-command parsers: :class:`HelpFormatter` unless the command chose its own."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", HelpFormatter)
        command = str(kwargs.get("prog", "")).split()[-1:]
        if not kwargs.get("epilog") and command and command[0] in EXAMPLES:
            kwargs["epilog"] = f"example: {EXAMPLES[command[0]]}"
        super().__init__(*args, **kwargs)

    def add_argument(self, *args, **kwargs):
        if kwargs.get("help") is None and kwargs.get("default") not in (None, False) \
                and args and str(args[0]).startswith("-"):
            kwargs["help"] = "default: %(default)s"
        return super().add_argument(*args, **kwargs)


def _command_of(argv) -> str | None:
    for a in argv:
        if not a.startswith("-"):
            return a if a in COMMANDS else None
    return None


def build_parser(argv=None) -> argparse.ArgumentParser:
    """The ``qblif`` parser. Only the module of the command named in ``argv`` is imported
    (with ``argv=None``: every module, e.g. for documentation tools)."""
    parser = argparse.ArgumentParser(
        prog="qblif", epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
        description="QB-LIF burst neurons: train (lava-dl SLAYER), compile (NetX HDF5 -> Lava "
                    "process graph), run (Lava CPU).")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                parser_class=_Parser)
    wanted = COMMAND_MODULES if argv is None else (
        (COMMANDS[_command_of(argv)][0],) if _command_of(argv) else ())
    import importlib
    for name in wanted:
        importlib.import_module(name).register(sub)
    for name, (_, text) in COMMANDS.items():     # the others: listed, not loaded
        if name not in sub.choices:
            sub.add_parser(name, help=text)
    return parser


def _interrupted(command: str, signum: int) -> int:
    interrupts.clear_unhandled_flag()       # else CPython may exit by SIGINT, not 128 + signum
    name = signal.Signals(signum).name
    print(f"qblif {command}: interrupted ({name})" if command else f"qblif: interrupted ({name})",
          file=sys.stderr)
    return 128 + int(signum)


def main(argv=None) -> int:
    saved = interrupts.install()
    argv = sys.argv[1:] if argv is None else list(argv)
    command = _command_of(argv)
    interrupts.forget_signals()
    try:
        interrupts.arm()            # raises now if a signal came while the modules loaded
        from qblif.lava.session import WorkerDied
        parser = build_parser(argv)
        args = parser.parse_args(argv)
        try:
            return int(args.func(args) or 0)
        except QblifError as exc:
            if interrupts.last_signal() is not None:
                raise
            print(f"qblif {args.command}: error: {exc}", file=sys.stderr)
            return getattr(exc, "exit_code", 1)
        except (ValueError, OSError, WorkerDied) as exc:
            if interrupts.last_signal() is not None:
                raise
            print(f"qblif {args.command}: error: {exc}", file=sys.stderr)
            return 1
    except (Exception, KeyboardInterrupt) as exc:
        signum = getattr(exc, "signum", None) or interrupts.last_signal() or (
            signal.SIGINT if isinstance(exc, KeyboardInterrupt) else None)
        if signum is None:
            raise
        return _interrupted(command, signum)
    finally:
        interrupts.disarm()
        interrupts.restore(saved)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
