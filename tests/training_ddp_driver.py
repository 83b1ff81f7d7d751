"""Driver for tests/test_training_ddp.py, run under torchrun: trains the tiny digits run of
the test, optionally stopping (SIGINT on rank 0 at epoch 2, batch 0) or resuming, and records
each rank's final weights and every file each rank wrote."""
from __future__ import annotations

import json
import os
import signal
import sys

import torch

import qblif.core.fileio as fio
from qblif.training import train as tr

mode, outdir = sys.argv[1], sys.argv[2]
rank = int(os.environ["RANK"])
log = os.path.join(outdir, f"writes.rank{rank}.{mode}.json")
written = []
_real = fio.write_together


def logged(items):
    items = list(items)
    written.extend(p for p, _ in items)
    return _real(items)


fio.write_together = logged
import qblif.training.card as card  # noqa: E402
card.write_together = logged
import qblif.training.checkpoint as checkpoint  # noqa: E402
checkpoint.write_together = logged
cfg = tr.TrainConfig(**json.loads(os.environ["QBLIF_TEST_CFG"]))
ckpt = os.path.join(outdir, "ddp.ckpt")


def hook(epoch, batch):
    if mode == "stop" and rank == 0 and (epoch, batch) == (2, 0):
        os.kill(os.getpid(), signal.SIGINT)


try:
    model, res = tr.train(cfg, log=None, checkpoint=ckpt, on_batch=hook,
                          resume=ckpt if mode == "resume" else None)
    torch.save(model.state_dict(), os.path.join(outdir, f"weights.rank{rank}.pt"))
    if res is not None:
        tr.write_outputs(model, cfg, res, os.path.join(outdir, "ddp.net"))
    code = 0
except tr.TrainingStopped:
    code = 3
finally:
    with open(log, "w") as f:
        json.dump(written, f)
    from qblif.training.distributed import finish
    finish()
sys.exit(code)
