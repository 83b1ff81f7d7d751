"""The ``qblif`` command line: ``demo``, ``train``, ``compile``, ``run``.

Each sub-command lives in the module that owns it and exposes
``register(subparsers)``; this file only wires them and turns user-facing errors
(:class:`qblif_lava.errors.QblifError`, ``ValueError``, ``OSError``) into one line
on stderr and a non-zero exit code, never a traceback.
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys

# torch's OpenMP threads sleep instead of spinning between parallel regions: on a shared or
# busy machine, spinning threads of a 2-thread run took 3-5x its wall time (the exact engine,
# bench/bench_engine.py). Must be set before torch loads (the command modules import it).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from qblif_lava.errors import QblifError

COMMAND_MODULES = ("qblif_lava.demo", "qblif_lava.training.cli", "compiler.cli")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="qblif", description="QB-LIF burst neurons: train (lava-dl), compile (NetX -> Lava), run (CPU).")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


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
