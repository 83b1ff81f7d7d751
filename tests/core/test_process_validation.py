"""Every out-of-range QBLIF parameter raises one ValueError naming the parameter, value and range."""
import numpy as np
import pytest

from qblif import QBLIF

GOOD = dict(shape=(4,), du=10, dv=20, vth=100, bias_mant=0, bias_exp=0, max_burst=4,
            reset_mode="subtract")


@pytest.mark.parametrize("name,value,pattern", [
    ("du", -1, r"du=-1 .*\[0, 4095\]"),
    ("du", 4096, r"du=4096 .*\[0, 4095\]"),
    ("dv", 5000, r"dv=5000 .*\[0, 4095\]"),
    ("du", 1.5, r"du=.*integer"),
    ("vth", 0, r"vth=0 .*\[1, 131071\]"),
    ("vth", -3, r"vth=-3 .*\[1, 131071\]"),
    ("vth", 2 ** 17, r"vth=131072 .*\[1, 131071\]"),
    ("vth", np.array([1, 2, 0, 4]), r"vth=array .*min 0.*\[1, 131071\]"),
    ("vth", np.array([1, 2, 3]), r"vth has shape \(3,\), expected a scalar or shape \(4,\)"),
    ("bias_mant", 4096, r"bias_mant=4096 .*\[-4096, 4095\]"),
    ("bias_exp", 8, r"bias_exp=8 .*\[-7, 7\]"),
    ("max_burst", 0, r"max_burst=0 .*\[1, 255\]"),
    ("max_burst", 256, r"max_burst=256 .*\[1, 255\]"),
    ("reset_mode", "hard", r"reset_mode='hard' .*subtract.*zero"),
    ("shape", (4, 0), r"shape=\(4, 0\) .*positive"),
    ("shape", "abc", r"shape=.*positive"),
    ("reset_interval", 0, r"reset_interval=0 .*\[1, "),
    ("reset_offset", -2, r"reset_offset=-2 .*\[0, "),
])
def test_invalid_parameter_names_value_and_range(name, value, pattern):
    with pytest.raises(ValueError, match=pattern):
        QBLIF(**{**GOOD, name: value})


def test_valid_parameters_and_message_bits():
    proc = QBLIF(**{**GOOD, "vth": np.array([1, 2, 3, 131071]), "max_burst": 15})
    assert proc.num_message_bits == 4
    np.testing.assert_array_equal(proc.vth.init, [1, 2, 3, 131071])
    assert proc.reset_mode == "subtract"
