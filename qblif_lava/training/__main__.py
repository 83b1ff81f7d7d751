"""``python -m qblif_lava.training ARGS`` = ``qblif train ARGS`` (what ``torchrun
--nproc-per-node N -m qblif_lava.training ...`` and ``qblif train --nproc N`` run)."""
from __future__ import annotations

import argparse
import sys

from qblif_lava.errors import QblifError


def main(argv=None) -> int:
    from qblif_lava.training import cli
    parser = argparse.ArgumentParser(prog="python -m qblif_lava.training")
    cli.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["train", *(sys.argv[1:] if argv is None else argv)])
    try:
        return int(args.func(args) or 0)
    except QblifError as exc:
        print(f"qblif train: error: {exc}", file=sys.stderr)
        return getattr(exc, "exit_code", 1)
    except (ValueError, OSError) as exc:
        print(f"qblif train: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("qblif train: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
