"""Test harness: run neuron processes under Lava's CPU runtime and record every step.

Also counts this process's live child processes and POSIX shared-memory
segments, for the leak tests.
"""
from __future__ import annotations

import os
import time
from pathlib import Path

from lava.magma.core.run_conditions import RunSteps
from lava.magma.core.run_configs import Loihi2SimCfg
from lava.proc.io.sink import RingBuffer as Sink
from lava.proc.io.source import RingBuffer as Source
from lava.proc.monitor.process import Monitor

from qblif.lava.session import lava_session


def run_and_record(neurons, a, tag="fixed_pt", record_uv=True):
    """Drive every process in ``neurons`` with the same input ``a`` of shape (N, T).

    Returns, per neuron process, a dict with ``s`` (and ``u``, ``v``), each (T, N):
    the values after each step, as the process's Vars show them.
    """
    n_neurons, steps = a.shape
    src = Source(data=a)
    sinks, monitors = [], []
    for proc in neurons:
        src.s_out.connect(proc.a_in)
        sink = Sink(shape=(n_neurons,), buffer=steps)
        proc.s_out.connect(sink.a_in)
        sinks.append(sink)
        mons = {}
        if record_uv:
            for var in ("u", "v"):
                mon = Monitor()
                mon.probe(getattr(proc, var), steps)
                mons[var] = mon
        monitors.append(mons)
    with lava_session(src):
        src.run(condition=RunSteps(num_steps=steps), run_cfg=Loihi2SimCfg(select_tag=tag))
        out = []
        for proc, sink, mons in zip(neurons, sinks, monitors):
            rec = {"s": sink.data.get().T.copy()}
            for var, mon in mons.items():
                rec[var] = mon.get_data()[proc.name][var].copy()
            out.append(rec)
    return out


def child_pids() -> set:
    """PIDs of live (non-zombie) children of this process, except multiprocessing's
    resource tracker (one per interpreter, started by the first shared-memory use)."""
    me = str(os.getpid())
    pids = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[1] == me and fields[0] != "Z":
            cmdline = (stat.parent / "cmdline").read_bytes()
            if b"resource_tracker" not in cmdline:
                pids.add(int(stat.parent.name))
    return pids


def shm_segments() -> set:
    """Names of POSIX shared-memory segments in /dev/shm."""
    return set(os.listdir("/dev/shm")) if os.path.isdir("/dev/shm") else set()


def foreign_shm() -> set:
    """Names of /dev/shm segments mapped by processes outside this process's tree: another
    program's live Lava run (the directory is machine-wide), not a leak of ours."""
    parent, maps = {}, {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent[int(stat.parent.name)] = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
    ours, grew = {os.getpid()}, True
    while grew:
        new = {pid for pid, pp in parent.items() if pp in ours and pid not in ours}
        ours |= new
        grew = bool(new)
    for pid in set(parent) - ours:
        try:
            text = Path(f"/proc/{pid}/maps").read_text()
        except OSError:
            continue
        maps[pid] = {line.rsplit("/dev/shm/", 1)[1].split(" (deleted)")[0]
                     for line in text.splitlines() if "/dev/shm/" in line}
    return set().union(*maps.values()) if maps else set()


def settled(before_pids: set, before_shm: set = None, timeout: float = 10.0):
    """Wait (bounded) for children to be reaped; return the leftover (pids, shm segments).
    Segments that another process tree maps (:func:`foreign_shm`) are not counted."""
    before_shm = shm_segments() if before_shm is None else before_shm
    deadline = time.monotonic() + timeout
    while True:
        extra_pids, extra_shm = child_pids() - before_pids, shm_segments() - before_shm
        if extra_shm:
            extra_shm -= foreign_shm()
        if not (extra_pids or extra_shm) or time.monotonic() > deadline:
            return extra_pids, extra_shm
        time.sleep(0.1)
