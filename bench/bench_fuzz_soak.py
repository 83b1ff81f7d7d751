"""Fuzz soak of the untrusted-file readers (issue 21, docs/hardening.md).

    python bench/bench_fuzz_soak.py [--seconds 300] [--in-process] [--seed 0] [--kinds netx,nir,npy,ckpt]

Draws random cases of tests/fuzz_files.py (mutated NetX and NIR files, ``.npy`` headers,
checkpoints) until ``--seconds`` have passed. Default: each case runs the real command in a
child process (``qblif compile FILE``, ``qblif run MODEL --input FILE --engine exact``,
``qblif train --resume FILE``) and is judged by its exit code and stderr: ``ran`` (0),
``refused`` (2 and one line, no traceback), anything else is a FAILURE; a case past
``--case-timeout`` seconds is a hang (FAILURE). Peak memory per case is the child's max RSS
(``os.wait4``). ``--in-process`` reads the files in this process instead (many more cases;
memory is then this process's peak RSS). Prints the cases tried, the outcomes per kind and
the worst memory and time; exit 1 on any failure.
"""
from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
import fuzz_files as F  # noqa: E402


def run_cli(kind: str, path: Path, timeout: float) -> tuple:
    """``(outcome, seconds, peak RSS MB, last stderr line)`` of the command reading ``path``."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    t0 = time.perf_counter()
    with tempfile.TemporaryFile() as err:
        p = subprocess.Popen([sys.executable, "-m", "qblif.cli.main", *F.cli_args(kind, path)],
                             stdout=subprocess.DEVNULL, stderr=err, env=env, cwd=path.parent)
        deadline = t0 + timeout
        while True:
            pid, status, usage = os.wait4(p.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                p.kill()
                _, status, usage = os.wait4(p.pid, 0)
                return "FAIL hang", time.perf_counter() - t0, usage.ru_maxrss / 1024, ""
            time.sleep(0.01)
        p.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        text = err.read().decode(errors="replace")
    lines = text.strip().splitlines()
    rc = p.returncode
    if rc == 0:
        outcome = "ran"
    elif rc == 2 and len(lines) == 1 and "Traceback" not in text:
        outcome = "refused"
    else:
        outcome = f"FAIL rc {rc}"
    return outcome, time.perf_counter() - t0, usage.ru_maxrss / 1024, (lines or [""])[-1]


def run_in_process(kind: str, path: Path) -> tuple:
    t0 = time.perf_counter()
    try:
        outcome = {"ok": "ran", "refused": "refused"}[F.read_case(kind, path)]
        last = ""
    except Exception as exc:  # noqa: BLE001 -- a soak records every failure and goes on
        outcome, last = f"FAIL {type(exc).__name__}", " ".join(str(exc).split())[:200]
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return outcome, time.perf_counter() - t0, peak, last


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=300.0, help="how long to draw cases")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--in-process", action="store_true", help="read in this process")
    ap.add_argument("--kinds", default=",".join(F.KINDS), help="comma-separated kinds")
    ap.add_argument("--case-timeout", type=float, default=120.0, help="seconds per case")
    args = ap.parse_args(argv)
    kinds = args.kinds.split(",")
    rng = np.random.RandomState(args.seed)
    outcomes = {k: Counter() for k in kinds}
    worst = {"rss": (0.0, None), "time": (0.0, None)}
    failures = []
    load0 = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="fuzz-soak-") as tmp:
        base = F.base_files(Path(tmp) / "base")
        t0, n = time.perf_counter(), 0
        while time.perf_counter() - t0 < args.seconds:
            kind = kinds[rng.randint(len(kinds))]
            case = (kind, F.OPS[kind][rng.randint(len(F.OPS[kind]))], int(rng.randint(1000)),
                    int(rng.randint(2 ** 31 - 1)))
            path = F.make_case(base, *case, Path(tmp) / f"case{n}.{kind}")
            outcome, secs, rss, last = (run_in_process(kind, path) if args.in_process
                                        else run_cli(kind, path, args.case_timeout))
            F.cleanup(path)
            n += 1
            outcomes[kind][outcome] += 1
            worst["rss"] = max(worst["rss"], (rss, case), key=lambda x: x[0])
            worst["time"] = max(worst["time"], (secs, case), key=lambda x: x[0])
            if outcome.startswith("FAIL"):
                failures.append((case, outcome, last))
                print(f"FAILURE {case}: {outcome}: {last}", flush=True)
    mode = "in process" if args.in_process else "one CLI process per case"
    print(f"{n} cases in {time.perf_counter() - t0:.0f} s ({mode}, seed {args.seed}, load "
          f"average {load0:.1f} at the start, {os.getloadavg()[0]:.1f} at the end)")
    for k in kinds:
        print(f"  {k:5s} {sum(outcomes[k].values()):5d} cases: " +
              ", ".join(f"{o} {c}" for o, c in sorted(outcomes[k].items())))
    print(f"  worst peak memory {worst['rss'][0]:.0f} MB {worst['rss'][1]}; "
          f"worst time {worst['time'][0]:.2f} s {worst['time'][1]}; failures {len(failures)}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
