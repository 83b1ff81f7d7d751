"""The ``qblif`` command line: ``demo``, ``train``, ``compile``, ``run``, ``compare``.

Each sub-command lives in the module that owns it and exposes
``register(subparsers)``; this file only wires them and turns user-facing errors
(:class:`qblif_lava.errors.QblifError`, ``ValueError``, ``OSError``) into one line
on stderr and a non-zero exit code, never a traceback.
"""
from __future__ import annotations

import argparse
import importlib
import sys

from qblif_lava.errors import QblifError

COMMAND_MODULES = ("qblif_lava.demo", "qblif_lava.training.cli", "compiler.cli")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="qblif", description="QB-LIF burst neurons: train (lava-dl), compile (NetX -> Lava), run (CPU).")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    _register_compare(sub)
    return parser


def _register_compare(sub):
    """``qblif compare``: its work lives in :mod:`compiler.plots`, imported only when it runs."""
    from qblif_lava.data import DATASETS
    p = sub.add_parser("compare", help="run two models on the same test samples in Lava: "
                       "accuracy, spikes, SynOps, burst histograms (table, --plot figure)")
    p.add_argument("models", nargs=2, metavar="MODEL.net")
    p.add_argument("--dataset", choices=DATASETS, required=True)
    p.add_argument("--samples", type=int, default=20, help="test images (default 20)")
    p.add_argument("--encoding", choices=("graded", "binary"), default="graded")
    p.add_argument("--plot", metavar="FILE.png", help="save the side-by-side figure")
    p.set_defaults(func=lambda args: importlib.import_module("compiler.plots").cmd_compare(args))


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except QblifError as exc:
        print(f"qblif {args.command}: error: {exc}", file=sys.stderr)
        return getattr(exc, "exit_code", 1)
    except (ValueError, OSError) as exc:
        print(f"qblif {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"qblif {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
