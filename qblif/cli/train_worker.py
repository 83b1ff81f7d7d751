"""``python -m qblif.cli.train_worker ARGS`` = ``qblif train ARGS`` (what ``torchrun
--nproc-per-node N -m qblif.cli.train_worker ...`` and ``qblif train --nproc N`` run)."""
from __future__ import annotations

import argparse
import os
import sys

from qblif.core.errors import QblifError


def main(argv=None) -> int:
    from qblif.cli import train as cli
    parser = argparse.ArgumentParser(prog="python -m qblif.cli.train_worker")
    cli.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["train", *(sys.argv[1:] if argv is None else argv)])
    from qblif.core.fileio import WriteError
    from qblif.training import distributed
    from qblif.training.loop import TrainingStopped
    rank = int(os.environ.get("RANK", "0"))
    try:
        return int(args.func(args) or 0)
    except (TrainingStopped, WriteError) as exc:
        if isinstance(exc, WriteError) and not getattr(exc, "after_training", False):
            print(f"qblif train: error: {exc}", file=sys.stderr)
            return exc.exit_code     # mid-run (a checkpoint): non-zero, torchrun ends the others
        # all ranks stopped together, or rank 0 alone failed to write the outputs after the
        # others finished: one line, from rank 0
        if rank == 0:
            print(f"qblif train: error: {exc}", file=sys.stderr)
        code = getattr(exc, "exit_code", 1)
        return 0 if distributed.report_status(code) else code
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
