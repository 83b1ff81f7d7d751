"""No OS process or shared-memory segment outlives a Lava run, also when the run raises."""
import numpy as np
import pytest
from lava.magma.core.run_conditions import RunSteps
from lava.magma.core.run_configs import Loihi2SimCfg
from lava.proc.io.source import RingBuffer as Source

from failing_proc.process import FailingSink
from qblif import QBLIF
from qblif.lava.session import stop_runtime
from lava_harness import child_pids, run_and_record, settled, shm_segments


def test_twenty_create_run_stop_cycles_leave_nothing():
    before_pids, before_shm = child_pids(), shm_segments()
    a = np.full((4, 5), 900, np.int32)
    for i in range(20):
        (rec,) = run_and_record([QBLIF(shape=(4,), vth=10, max_burst=3)], a, record_uv=False)
        assert rec["s"].max() == 3
    assert settled(before_pids, before_shm) == (set(), set())


def test_run_that_raises_leaves_nothing():
    before_pids, before_shm = child_pids(), shm_segments()
    src = Source(data=np.full((4, 10), 900, np.int32))
    qb = QBLIF(shape=(4,), vth=10, max_burst=3)
    sink = FailingSink(shape=(4,), fail_at=3)
    src.s_out.connect(qb.a_in)
    qb.s_out.connect(sink.a_in)
    with pytest.raises(RuntimeError, match="Exception"):
        try:
            qb.run(condition=RunSteps(num_steps=10), run_cfg=Loihi2SimCfg(select_tag="fixed_pt"))
        finally:
            stop_runtime(qb)
    assert settled(before_pids, before_shm) == (set(), set())
