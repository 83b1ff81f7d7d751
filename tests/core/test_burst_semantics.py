"""Hand-computed bursts (spec section 1, step 4-5), in the reference and in Lava."""
import numpy as np
import pytest

from qblif import QBLIF
from qblif.core import reference
from lava_harness import run_and_record

VTH = 10
THETA = VTH << 6  # 640


@pytest.mark.parametrize("v,k,expected", [
    (THETA, 4, 0),              # v == theta: the strict comparator does not fire
    (THETA + 1, 4, 1),
    (2 * THETA, 4, 1),          # exact multiple k*theta gives k - 1
    (3 * THETA, 4, 2),
    (2 * THETA + 1, 4, 2),      # k*theta + 1 gives k
    (3 * THETA + 1, 4, 3),
    (100 * THETA, 4, 4),        # saturates at K
    (-5 * THETA, 4, 0),
    (256 * THETA, 255, 255),
])
def test_burst_count_hand_cases(v, k, expected):
    assert reference.burst_count(np.array([v]), THETA, k)[0] == expected


def test_subtract_keeps_excess_and_zero_drops_it():
    v = np.array([10 * THETA + 5])
    n = reference.burst_count(v, THETA, 4)
    assert n[0] == 4
    assert reference.reset_voltage(v, n, THETA, "subtract")[0] == 6 * THETA + 5
    assert reference.reset_voltage(v, n, THETA, "zero")[0] == 0


def test_lava_hand_cases_single_step():
    """du=4095 makes u = a << 6 each step; dv=4095 leaves v = u + bias while |v| < 4096."""
    a = np.array([VTH, 2 * VTH, 3 * VTH, 2 * VTH, 3 * VTH, 10 * VTH])[:, None].astype(np.int32)
    bias = np.array([0, 0, 0, 1, 1, 0])
    (rec,) = run_and_record([QBLIF(shape=(6,), du=4095, dv=4095, vth=VTH, bias_mant=bias,
                                   max_burst=4, reset_mode="subtract")], a)
    np.testing.assert_array_equal(rec["s"][0], [0, 1, 2, 2, 3, 4])
    np.testing.assert_array_equal(rec["v"][0], [THETA, THETA, THETA, 1, 1, 6 * THETA])


@pytest.mark.parametrize("mode,expected", [("subtract", [4, 4, 1, 0, 0]), ("zero", [4, 0, 0, 0, 0])])
def test_lava_excess_carries_over_with_subtract(mode, expected):
    """One input pulse of 10*theta, no leak (dv=0): subtract spends the excess over later steps."""
    a = np.zeros((1, 5), np.int32)
    a[0, 0] = 10 * VTH
    (rec,) = run_and_record([QBLIF(shape=(1,), du=4095, dv=0, vth=VTH, max_burst=4,
                                   reset_mode=mode)], a)
    np.testing.assert_array_equal(rec["s"][:, 0], expected)
    np.testing.assert_array_equal(rec["s"][:, 0], reference.simulate(
        a.T, du=4095, dv=0, vth=VTH, max_burst=4, reset_mode=mode)[:, 0])


def test_float_quotient_equals_integer_floor_division():
    """burst_count's float64 path equals the integer formula over the whole 24-bit range."""
    rng = np.random.default_rng(7)
    theta = np.concatenate([rng.integers(1, 2 ** 17, 4000), [1, 2, 2 ** 17 - 1] * 3]) << 6
    k = rng.integers(0, 300, theta.size)
    v = np.concatenate([rng.integers(reference.V_MIN, reference.V_MAX + 1, 4000),
                        [reference.V_MIN, reference.V_MAX, 0] * 3]).astype(np.int64)
    v = np.where(k % 3 == 0, np.clip(k * theta + (k % 2), reference.V_MIN, reference.V_MAX), v)
    for K in (1, 4, 255):
        expected = np.where(v <= theta, 0, np.minimum(K, (v - 1) // theta))
        np.testing.assert_array_equal(reference.burst_count(v.astype(np.int32), theta.astype(np.int32), K),
                                      expected)
