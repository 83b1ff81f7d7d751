"""Data-parallel training on torch's own engine (DistributedDataParallel).

A run started by ``torchrun --nproc-per-node N -m qblif.cli.train_worker ...`` (or ``qblif train
--nproc N``, which launches that) has ``WORLD_SIZE`` = N processes: :func:`init` joins the
process group (gloo on CPU, nccl on CUDA; each process takes GPU ``LOCAL_RANK``). Every
process draws the same global batch order from the run's seed and takes its share
(``batch[rank::N]``), so a run with N processes follows the same batches as one process
with the same global ``batch_size``. Rank 0 alone validates, checkpoints, exports and writes
the card.
"""
from __future__ import annotations

import dataclasses
import os
import subprocess
import sys

import torch
import torch.distributed as dist


@dataclasses.dataclass(frozen=True)
class Context:
    """This process's place in the run: ``world`` processes, this one ``rank`` (0 = the
    writer), ``local_rank`` on its host."""
    world: int = 1
    rank: int = 0
    local_rank: int = 0

    @property
    def is_writer(self) -> bool:
        return self.rank == 0


def context() -> Context:
    """The current :class:`Context` (``Context()`` outside a process group)."""
    if dist.is_available() and dist.is_initialized():
        return Context(dist.get_world_size(), dist.get_rank(),
                       int(os.environ.get("LOCAL_RANK", dist.get_rank())))
    return Context()


def launched() -> bool:
    """Whether this process was started by torchrun with more than one process."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def init(device: str) -> Context:
    """Join the process group torchrun set up (no-op for a single process): gloo on CPU,
    nccl on CUDA. Returns the :class:`Context`."""
    if launched() and not dist.is_initialized():
        cuda = torch.device(device).type == "cuda"
        if cuda:
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group("nccl" if cuda else "gloo")
    return context()


def rank_device(device: str, ctx: Context) -> str:
    """The device of this rank: ``cuda:LOCAL_RANK`` for a multi-process CUDA run."""
    if ctx.world > 1 and torch.device(device).type == "cuda":
        return f"cuda:{ctx.local_rank}"
    return device


def any_flag(flag: bool, ctx: Context) -> bool:
    """Whether ``flag`` is set on any process (every process gets the same answer)."""
    if ctx.world == 1:
        return bool(flag)
    t = torch.tensor([1.0 if flag else 0.0])
    if dist.get_backend() == "nccl":
        t = t.cuda()
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item() > 0)


def broadcast_object(obj, ctx: Context):
    """Rank 0's ``obj`` on every process."""
    if ctx.world == 1:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def gather_objects(obj, ctx: Context) -> list:
    """Every rank's ``obj``, in rank order (on every process)."""
    if ctx.world == 1:
        return [obj]
    out = [None] * ctx.world
    dist.all_gather_object(out, obj)
    return out


def all_sum(x: float, ctx: Context) -> float:
    """The sum of ``x`` over the processes."""
    if ctx.world == 1:
        return float(x)
    t = torch.tensor([float(x)], dtype=torch.float64)
    if dist.get_backend() == "nccl":
        t = t.cuda()
    dist.all_reduce(t)
    return float(t.item())


def barrier(ctx: Context) -> None:
    if ctx.world > 1:
        dist.barrier()


def finish() -> None:
    """Leave the process group (if joined), all ranks together: a rank that destroyed its gloo
    group while rank 0 was still writing the outputs could hang in ``destroy_process_group``
    (seen under load), so every rank first waits at a barrier for the others."""
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def launch_command(nproc: int, argv: list) -> list:
    """The torchrun command line that runs ``qblif.training`` with ``argv`` on ``nproc``
    processes of this host."""
    return [sys.executable, "-m", "torch.distributed.run", "--standalone",
            f"--nproc-per-node={int(nproc)}", "-m", "qblif.cli.train_worker", *argv]


#: environment variable naming the file where rank 0 leaves its exit status (see :func:`launch`)
STATUS_ENV = "QBLIF_DDP_STATUS"


def launch(nproc: int, argv: list) -> int:
    """Run :func:`launch_command` and return the run's exit status. A planned stop (exit 3)
    or a write error on rank 0 is reported by rank 0 alone, which then exits 0 and leaves its
    status in the file ``$QBLIF_DDP_STATUS`` (torchrun would otherwise print its own failure
    report); any other failure is torchrun's."""
    import tempfile
    with tempfile.TemporaryDirectory(prefix="qblif-ddp-") as d:
        status = os.path.join(d, "status")
        rc = subprocess.call(launch_command(nproc, argv), env=dict(os.environ, **{STATUS_ENV: status}))
        if rc == 0 and os.path.exists(status):
            with open(status) as f:
                return int(f.read().strip() or 0)
        return rc


def report_status(code: int) -> bool:
    """On a torchrun worker started by :func:`launch`: record rank 0's exit ``code`` for the
    launcher. Returns whether it was recorded (the worker then exits 0)."""
    path = os.environ.get(STATUS_ENV)
    if not path or not launched():
        return False
    if int(os.environ.get("RANK", "0")) == 0:
        with open(path, "w") as f:
            f.write(str(int(code)))
    return True
