"""Start-up time of ``qblif --help`` and ``qblif COMMAND --help`` (issue 10, D9: under 1 s).

    python bench/bench_cli_help.py [--repeat 5]

Runs each as a fresh ``python -m qblif.cli.main ... --help`` and prints the median wall time.
``qblif --help`` imports no command module (``qblif.cli.main`` loads only the module of the
command that runs); no command's help imports torch, lava-dl or Lava.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args(argv)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    sys.path.insert(0, str(ROOT))
    from qblif.cli.main import COMMANDS
    for cmd in [[]] + [[name] for name in COMMANDS]:
        times = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-m", "qblif.cli.main", *cmd, "--help"], cwd=ROOT,
                           env=env, stdout=subprocess.DEVNULL, check=True)
            times.append(time.perf_counter() - t0)
        print(f"qblif {' '.join(cmd + ['--help']):<20} median {statistics.median(times):.3f} s "
              f"(min {min(times):.3f}, {args.repeat} runs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
