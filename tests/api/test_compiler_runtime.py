"""CompiledNetwork.run options: chunked runs (progress bar) and recording chosen layers only."""
import os

import numpy as np

import qblif
from qblif.lava.runner import chunks as _chunks

MODEL = os.path.join(os.path.dirname(__file__), "..", "..", "netx_models", "digits_qblif_mlp.net")


def test_chunks_cover_the_run():
    assert _chunks(602, 50) == [13] * 2 + [12] * 48 and sum(_chunks(602, 50)) == 602
    assert _chunks(3, 50) == [1, 1, 1]
    assert _chunks(7, 1) == [7]


def test_chunked_run_and_output_only_recording_equal_a_plain_run():
    frames = np.random.default_rng(0).integers(0, 16, size=(5, 64))
    with qblif.compile(MODEL) as net:
        steps = int(net.ir.graph["timesteps"])
        plain = net.run(frames, steps)
        chunked = net.run(frames, steps, progress=True)
        only_out = net.run(frames, steps, layers_to_record=[net.output_index])
        report = net.report()
    assert sorted(plain) == sorted(chunked) == [0, 1]
    for i in plain:
        np.testing.assert_array_equal(plain[i], chunked[i])
    assert list(only_out) == [net.output_index]
    np.testing.assert_array_equal(only_out[net.output_index], plain[net.output_index])
    assert plain[net.output_index].sum() > 0
    assert "SynOps" in report
