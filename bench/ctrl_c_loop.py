"""Ctrl-C at many moments of a cold ``qblif run`` (issue 10, docs/hardening.md).

    python bench/ctrl_c_loop.py [--start 0.1] [--stop 1.5] [--step 0.01] [--warm] [--baseline REF]
                                [--signal INT|TERM|HUP]

Copies ``qblif`` and ``compiler`` to a temporary directory without any ``__pycache__``
(a fresh clone's first run; ``PYTHONDONTWRITEBYTECODE=1`` keeps it cold), then for each delay
starts ``python -m qblif.cli.main run`` (digits MLP, 100 samples x 100 steps) in its own
session, sends SIGINT to its process group after the delay (as a terminal's Ctrl-C; SIGTERM
or SIGHUP go to the parent alone, as ``kill`` sends them), and checks: exit 128 + signal, the
last line of stderr ``qblif run: interrupted (SIGINT)``, no traceback or "Exception ignored",
no ``qblif-run-*`` directory left. Prints each failure and a summary. Each run takes about the
delay plus 0.5 s; 140 delays take about 5 minutes on the 2-core machine.
Delays under about 0.05 s land in the interpreter's own start (see docs/hardening.md).
"""
from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ARGS = ["run", str(ROOT / "netx_models" / "digits_qblif_mlp.net"), "--dataset", "digits",
        "--samples", "100", "--steps", "100"]


def wait_for_our_code(pid: int, limit: float = 30.0) -> None:
    """Until ``qblif/__init__``'s first line has run in process ``pid``: it is the first to
    catch SIGTERM (Python leaves it at the default), so the bit of SIGTERM appears in
    ``SigCgt`` of ``/proc/PID/status`` then. Polls every millisecond."""
    bit = 1 << (signal.SIGTERM - 1)
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < limit:
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            return
        caught = int(status.split("SigCgt:")[1].split()[0], 16)
        if caught & bit:
            return
        time.sleep(0.001)


def one(code: Path, delay: float, cold: bool, sig: signal.Signals = signal.SIGINT,
        after_start: bool = False):
    tmp = tempfile.mkdtemp(prefix="ctrl-c-loop-")
    env = dict(os.environ, PYTHONPATH=str(code), TMPDIR=tmp, PYTHONUNBUFFERED="1")
    if cold:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
    try:
        with open(os.path.join(tmp, "stderr"), "wb") as err:
            # cwd = the code: ``python -m`` puts the working directory first on sys.path
            p = subprocess.Popen([sys.executable, "-m", "qblif.cli.main", *ARGS], cwd=code,
                                 env=env, stdout=subprocess.DEVNULL, stderr=err,
                                 start_new_session=True)
        if after_start:
            wait_for_our_code(p.pid)
        time.sleep(delay)
        if sig == signal.SIGINT:
            os.killpg(p.pid, sig)
        else:
            os.kill(p.pid, sig)
        try:
            rc = p.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            rc = "hung"
        text = Path(tmp, "stderr").read_text(errors="replace")
        left = [d for d in os.listdir(tmp) if d.startswith("qblif-run-")]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    last = text.replace("\r", "\n").strip().splitlines()[-1:]
    ok = rc == 128 + sig and last == [f"qblif run: interrupted ({sig.name})"] and not left \
        and "Traceback" not in text \
        and "Exception ignored" not in text
    return ok, rc, text, left


def before_our_code(text: str) -> bool:
    """Whether a failed run was interrupted before ``qblif/__init__``'s first line: its whole
    stderr has no frame of ours and not our line (the interpreter's own start: ``site``, the
    editable install's ``.pth``, ``runpy`` finding the package; or no output at all, killed
    by SIGINT before Python had set up its handler). Any interruption after that line that
    escapes as a traceback passes through a frame under ``/qblif/``."""
    return "/qblif/" not in text and "qblif run:" not in text


def cold_copy(src: Path, dst: Path) -> Path:
    """``qblif`` and ``compiler`` of the tree ``src`` without bytecode, in ``dst``."""
    for pkg in ("qblif", "compiler"):
        if (src / pkg).is_dir():
            shutil.copytree(src / pkg, dst / pkg,
                            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return dst


def baseline_copy(ref: str, dst: Path) -> Path:
    """``qblif`` and ``compiler`` as of the git commit ``ref`` of this repository."""
    dst.mkdir(parents=True)
    tar = subprocess.run(["git", "-C", str(ROOT), "archive", ref, "qblif", "compiler"],
                         check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(dst)], input=tar, check=True)
    return dst


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--start", type=float, default=0.1, help="first delay in s")
    ap.add_argument("--stop", type=float, default=1.5, help="last delay in s")
    ap.add_argument("--step", type=float, default=0.01, help="delay step in s")
    ap.add_argument("--warm", action="store_true", help="run the tree as is (bytecode cache)")
    ap.add_argument("--signal", choices=("INT", "TERM", "HUP"), default="INT")
    ap.add_argument("--after-start", action="store_true",
                    help="count each delay from qblif/__init__'s first line (SIGTERM caught), "
                         "not from the process start: leaves out the interpreter's own start")
    ap.add_argument("--baseline", metavar="GIT_REF", default=None,
                    help="also run the code of this commit, alternating with this tree at "
                         "each delay (cold)")
    args = ap.parse_args(argv)
    sig = signal.Signals["SIG" + args.signal]
    with tempfile.TemporaryDirectory(prefix="ctrl-c-code-") as tmp:
        trees = {"this tree": ROOT if args.warm else cold_copy(ROOT, Path(tmp) / "new")}
        if args.baseline:
            trees[args.baseline] = baseline_copy(args.baseline, Path(tmp) / "base")
        n = round((args.stop - args.start) / args.step) + 1
        bad = {name: [] for name in trees}
        early = {name: 0 for name in trees}
        t0 = time.perf_counter()
        load0 = os.getloadavg()[0]
        for i in range(n):
            delay = args.start + i * args.step
            for name, code in trees.items():
                ok, rc, text, left = one(Path(code), delay, cold=not args.warm, sig=sig,
                                         after_start=args.after_start)
                if not ok:
                    bad[name].append(delay)
                    early[name] += before_our_code(text)
                    tail = "\n".join(text.replace("\r", "\n").strip().splitlines()[-40:])
                    print(f"FAIL [{name}] delay {delay:.3f} s: rc {rc}, left {left}\n{tail}\n---",
                          flush=True)
    mode = ("warm" if args.warm else "cold") + (
        ", delays from qblif's first line" if args.after_start else "")
    for name in trees:
        print(f"[{name}] {n - len(bad[name])} of {n} runs ok ({sig.name}, {mode}, delays "
              f"{args.start:.3f}..{args.stop:.3f} s step {args.step:.3f}, load average "
              f"{load0:.1f} at the start, {os.getloadavg()[0]:.1f} at the end, "
              f"{time.perf_counter() - t0:.0f} s in all); {len(bad[name]) - early[name]} "
              f"failures after qblif's first line, {early[name]} in the interpreter's start; "
              f"failed at: {[round(d, 3) for d in bad[name]]}")
    return 1 if bad["this tree"] else 0


if __name__ == "__main__":
    sys.exit(main())
