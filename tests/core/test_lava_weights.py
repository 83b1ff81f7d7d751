"""qblif.core.numeric.lava_dense_weights is lava-nc's clip_weights + truncate_weights."""
import numpy as np
import pytest

from qblif.core.numeric import SIGN_MODES, lava_dense_weights


@pytest.mark.parametrize("mode", ["MIXED", "EXCITATORY", "INHIBITORY"])
@pytest.mark.parametrize("bits", [1, 2, 5, 7, 8])
def test_equals_lava_weightutils(mode, bits):
    from lava.utils.weightutils import SignMode, clip_weights, truncate_weights
    rng = np.random.default_rng(bits)
    w = rng.integers(-400, 400, size=(17, 13))
    if mode == "EXCITATORY":
        w = np.abs(w)
    elif mode == "INHIBITORY":
        w = -np.abs(w)
    want = truncate_weights(clip_weights(w, SignMode[mode], num_bits=8), SignMode[mode], bits)
    np.testing.assert_array_equal(lava_dense_weights(w, mode, bits), want)
    assert set(SIGN_MODES) == {m.name for m in SignMode}


def test_unknown_sign_mode_is_refused():
    with pytest.raises(ValueError, match="sign_mode"):
        lava_dense_weights(np.zeros(3), "BOTH", 8)
