"""Per-neuron thresholds, Var.set() between runs, periodic reset, Dense payloads, float model."""
import numpy as np
from lava.magma.core.run_conditions import RunSteps
from lava.magma.core.run_configs import Loihi2SimCfg
from lava.proc.dense.process import Dense
from lava.proc.io.sink import RingBuffer as Sink
from lava.proc.io.source import RingBuffer as Source

from qblif import QBLIF
from qblif.core import reference
from qblif.lava.session import lava_session
from lava_harness import run_and_record

N = 8
PARAMS = dict(du=200, dv=100, bias_mant=0, bias_exp=0)


def _input(seed, steps, lo=0, hi=3000):
    return np.random.default_rng(seed).integers(lo, hi, size=(N, steps)).astype(np.int32)


def test_per_neuron_threshold_matches_reference():
    vth = np.array([1, 3, 10, 50, 100, 400, 2000, 131071])
    a = _input(0, 60)
    (rec,) = run_and_record([QBLIF(shape=(N,), vth=vth, max_burst=7, **PARAMS)], a)
    np.testing.assert_array_equal(rec["s"], reference.simulate(a.T, vth=vth, max_burst=7, **PARAMS))
    # per-neuron scales really differ: low thresholds burst more than high ones
    assert rec["s"][:, 0].sum() > rec["s"][:, -2].sum()


def test_vth_set_between_runs_takes_effect():
    a = _input(1, 40, hi=300)
    vth1, vth2 = np.full(N, 2000), np.arange(1, N + 1) * 500
    src = Source(data=a)
    qb = QBLIF(shape=(N,), vth=vth1, max_burst=15, **PARAMS)
    sink = Sink(shape=(N,), buffer=40)
    src.s_out.connect(qb.a_in)
    qb.s_out.connect(sink.a_in)
    cfg = Loihi2SimCfg(select_tag="fixed_pt")
    with lava_session(qb):
        qb.run(condition=RunSteps(num_steps=20), run_cfg=cfg)
        qb.vth.set(vth2)
        qb.run(condition=RunSteps(num_steps=20), run_cfg=cfg)
        got = sink.data.get().T
    state = reference.QBLIFState.zeros((N,))
    expected = [reference.step(state, a[:, t], vth=vth1 if t < 20 else vth2, max_burst=15, **PARAMS)
                for t in range(40)]
    np.testing.assert_array_equal(got, np.stack(expected))
    unchanged = reference.simulate(a.T, vth=vth1, max_burst=15, **PARAMS)
    assert not np.array_equal(got[20:], unchanged[20:]), "the new threshold had no effect"


def test_periodic_reset_matches_reference():
    a = _input(2, 50)
    kw = dict(vth=30, max_burst=4, reset_interval=7, reset_offset=3, **PARAMS)
    (rec,) = run_and_record([QBLIF(shape=(N,), **kw)], a)
    n_ref, u_ref, v_ref = reference.simulate(a.T, record=True, **kw)
    np.testing.assert_array_equal(rec["s"], n_ref)
    np.testing.assert_array_equal(rec["u"], u_ref)
    np.testing.assert_array_equal(rec["v"], v_ref)
    no_reset = reference.simulate(a.T, vth=30, max_burst=4, **PARAMS)
    assert not np.array_equal(rec["s"], no_reset), "the reset schedule changed nothing"


def test_dense_with_message_bits_delivers_w_times_n():
    k, steps, n_out = 7, 30, 5
    rng = np.random.default_rng(3)
    w = 2 * rng.integers(-128, 128, size=(n_out, N))   # even 8-bit weights, as SLAYER exports
    a = _input(3, steps)
    src = Source(data=a)
    qb = QBLIF(shape=(N,), vth=15, max_burst=k, **PARAMS)
    dense = Dense(weights=w, num_message_bits=k.bit_length())
    s_sink, a_sink = Sink(shape=(N,), buffer=steps), Sink(shape=(n_out,), buffer=steps)
    src.s_out.connect(qb.a_in)
    qb.s_out.connect(dense.s_in)
    qb.s_out.connect(s_sink.a_in)
    dense.a_out.connect(a_sink.a_in)
    with lava_session(qb):
        qb.run(condition=RunSteps(num_steps=steps), run_cfg=Loihi2SimCfg(select_tag="fixed_pt"))
        counts, syn = s_sink.data.get(), a_sink.data.get()
    assert counts.max() > 1, "no bursts to carry"
    np.testing.assert_array_equal(syn[:, 0], 0)                 # one-step delay
    np.testing.assert_array_equal(syn[:, 1:], w @ counts[:, :-1])


def test_floating_pt_model_follows_spec_section_2():
    a = _input(4, 30, hi=40).astype(float)
    kw = dict(vth=12, max_burst=4, du=300, dv=500, bias_mant=64, bias_exp=1)
    (rec,) = run_and_record([QBLIF(shape=(N,), reset_mode="subtract", **kw)], a, tag="floating_pt")
    du, dv, bias = (kw["du"] + 1) / 4096, kw["dv"] / 4096, 64 * 2 / 64
    u = v = np.zeros(N)
    for t in range(a.shape[1]):
        u = u * (1 - du) + a[:, t]
        v = v * (1 - dv) + u + bias
        n = np.clip(np.ceil(v / 12) - 1, 0, 4)
        v = v - n * 12
        np.testing.assert_allclose(rec["s"][t], n)
        np.testing.assert_allclose(rec["v"][t], v, rtol=1e-12)
    assert rec["s"].max() == 4
