"""``qblif.schedule.t_step_refusal``: where it accepts an IR, T simulated steps per sample give
every layer's T-step window exactly as the ``T + latency`` run ``qblif evaluate`` used to
simulate (the shipped models); where a window sees more than its producer's window
(recurrence, axonal delays, sigma-delta state, neurons without a reset, other resets) it
refuses."""
from __future__ import annotations

import glob
import os

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import qblif  # noqa: E402
from qblif.exact import ExactEngine  # noqa: E402
from qblif.exact.kinds import delay_steps  # noqa: E402
from qblif.schedule import t_step_refusal  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODELS = sorted(glob.glob(os.path.join(ROOT, "netx_models", "*.net")))


@pytest.mark.parametrize("path", MODELS, ids=[os.path.basename(p) for p in MODELS])
def test_t_steps_equal_the_latency_run_windows(path):
    from qblif.core.data import load_dataset
    from qblif.core.encoding import quantize_intensity
    with qblif.compile(path) as net:
        ir, steps = net.ir, int(net.ir.graph["timesteps"])
        assert t_step_refusal(ir) is None
        assert "reset='none'" in t_step_refusal(ir, reset="none")
        x, _ = load_dataset(ir.graph["dataset"], "test", 24)
        frames = quantize_intensity(x, int(ir.graph["input_bits"])).reshape(
            (len(x),) + net.input_shape)
    eng = ExactEngine(ir)
    depth = max(ly.depth for ly in qblif.ir.layers(ir))
    total = steps + depth + delay_steps(ir)              # what evaluate simulated before
    win = {ly.index: total - ly.depth + 1 for ly in qblif.ir.layers(ir) if ly.synaptic}
    (_, long), = list(eng.chunks(frames, total, layer_steps=win, batch_size=len(frames)))
    short = eng.run(frames, steps)
    assert set(short) == set(long)
    for k, v in short.items():
        assert v.shape[1] == steps and long[k].shape[1] > steps
        np.testing.assert_array_equal(v, long[k][:, :steps].cpu().numpy(), err_msg=str(k))
    assert any(v.sum() > 0 for v in short.values())


@pytest.mark.parametrize("feature,why", [("recurrent", "recurrent"),
                                         ("recurrent_delay", "recurrent"),
                                         ("dense_delay", "axonal delays"),
                                         ("conv_delay", "axonal delays"),
                                         ("sdnn", "SDNN"), ("alif", "ALIF")])
def test_t_step_windows_refused_where_windows_see_more(tmp_path, feature, why):
    from lavadl_nets import make_net
    info = make_net(feature, 0, tmp_path / f"{feature}.net")
    with qblif.compile(info["path"]) as net:
        assert why in (t_step_refusal(net.ir) or ""), feature
