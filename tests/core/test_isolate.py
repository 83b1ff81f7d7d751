"""qblif.core.isolate: an untrusted read runs in a forked child with a time limit, so a file
that hangs HDF5 itself is one error, and no process is left behind."""
import sys
import time
from pathlib import Path

import pytest

from qblif.core.isolate import ReadFailed, ReadTimeout, read_isolated


def _children() -> set:
    import multiprocessing
    return {p.pid for p in multiprocessing.active_children()}


def test_a_result_comes_back_and_an_exception_is_one_line():
    assert read_isolated(sorted, [3, 1, 2]) == [1, 2, 3]
    with pytest.raises(ReadFailed, match=r"KeyError: 'x'") as info:
        read_isolated(dict().__getitem__, "x")
    assert info.value.kind == "KeyError"


def test_past_the_limit_the_child_is_killed_and_reaped():
    before = _children()
    t0 = time.perf_counter()
    with pytest.raises(ReadTimeout):
        read_isolated(time.sleep, 30, timeout=0.5)
    assert time.perf_counter() - t0 < 10
    assert _children() == before


def test_a_nir_file_that_hangs_hdf5_is_refused(tmp_path):
    """The fuzz soak's bit-flipped file: HDF5 loops inside the read (no signal handler runs)."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import fuzz_files as F
    import nir
    base = F.base_files(tmp_path)
    path = F.make_case(base, "nir", "flip", 392, 1522195650, tmp_path / "case.nir")
    before = _children()
    with pytest.raises((ReadTimeout, ReadFailed)):
        read_isolated(nir.read, str(path), False, timeout=3)
    assert _children() == before
