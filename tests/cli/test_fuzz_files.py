"""Fuzzed untrusted files (issue 21): mutated NetX and NIR files (shapes, dtypes, NaN/inf,
missing and extra keys, wrong types, truncated and bit-flipped files), ``.npy`` headers and
checkpoints. Every outcome is a successful read or one exit-2 line; nothing else, and no
case past the hypothesis deadline. In process and few examples; the long version with
per-case memory is bench/bench_fuzz_soak.py."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import fuzz_files as F  # noqa: E402

pytest.importorskip("nir")


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    return F.base_files(tmp_path_factory.mktemp("fuzz-base"))


def _cases(kind):
    return st.tuples(st.just(kind), st.sampled_from(F.OPS[kind]), st.integers(0, 200),
                     st.integers(0, 2 ** 31 - 1))


@pytest.mark.parametrize("kind, examples", [("netx", 25), ("nir", 25), ("npy", 40),
                                            ("ckpt", 20)])
def test_mutated_files_are_read_or_refused_in_one_line(base, tmp_path, kind, examples):
    if kind == "ckpt":
        pytest.importorskip("torch")
    seen = set()

    @settings(max_examples=examples, deadline=5000, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    @given(_cases(kind))
    def run(case):
        _, op, index, seed = case
        path = F.make_case(base, kind, op, index, seed, tmp_path / f"case.{kind}")
        seen.add(F.read_case(kind, path))
        F.cleanup(path)
    run()
    assert "refused" in seen
