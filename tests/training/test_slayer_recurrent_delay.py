"""QB-LIF training side of recurrence and axonal delays (``qblif.training.slayer``):

* :class:`qblif.training.slayer.delay.Delay` equals lava-dl's ``slayer.axon.Delay`` in values and
  gradients (plain torch, any device);
* :class:`qblif.training.slayer.block.Recurrent`: its quantized forward is the chip's integer
  arithmetic (``qblif.core.reference.step`` with ``a = W x[t] + R n[t-1]``), it exports the
  ``dense_rec`` layer lava-dl's ``cuba.Recurrent`` writes, and loads back identically;
* a recurrent QB-LIF network with delays trains one epoch on digits, and the exported file
  reloads to the same quantized forward; compiled, every layer equals SLAYER.
"""
from __future__ import annotations

import h5py
import numpy as np
import pytest

torch = pytest.importorskip("torch")

import qblif.training.lavadl  # noqa: E402,F401
from qblif.core import reference as ref  # noqa: E402
from qblif.training.slayer import block as qb  # noqa: E402
from qblif.training.slayer import set_quantized  # noqa: E402
from qblif.training.slayer.delay import Delay, shift  # noqa: E402
from qblif.training.slayer.hdf5 import export_network, latency, load_network  # noqa: E402


def params(k=3, **kw):
    p = dict(threshold=1.0, current_decay=0.5, voltage_decay=0.1, max_burst=k,
             reset_mode='subtract')
    p.update(kw)
    return p


def _int_weights(syn, rng, lo=-40, hi=60):
    w = rng.integers(lo, hi, size=tuple(syn.weight.shape)) * 2.0 / 64
    syn.weight.data = torch.tensor(w, dtype=syn.weight.dtype)


# ------------------------------------------------------------------ delays
@pytest.mark.parametrize("shape", [(3, 5, 10), (2, 4, 3, 3, 9)], ids=["dense", "conv"])
def test_delay_equals_lavadl(shape):
    from lava.lib.dl.slayer.axon import Delay as LavaDelay
    torch.manual_seed(0)
    x = torch.rand(shape)
    theirs, ours = LavaDelay(max_delay=62), Delay(shape[1])
    theirs(x)                                            # lava-dl sizes its delays lazily
    d = torch.rand(shape[1]) * 6
    theirs.delay.data, ours.delay.data = d.clone(), d.clone()
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    ya, yb = theirs(xa), ours(xb)
    g = torch.randn(shape)
    (ya * g).sum().backward()
    (yb * g).sum().backward()
    assert torch.equal(ya, yb)
    assert not torch.equal(yb, x)
    torch.testing.assert_close(xb.grad, xa.grad)
    torch.testing.assert_close(ours.delay.grad, theirs.delay.grad)
    assert ours.delay.grad.abs().sum() > 0


def test_delay_shifts_by_floor_and_clamps():
    x = torch.arange(1.0, 7.0).reshape(1, 1, 6).repeat(1, 3, 1)
    d = Delay(3, max_delay=4)
    d.delay.data = torch.tensor([0.0, 2.7, 9.0])
    y = d(x)
    assert d.delay.data.tolist() == [0.0, 2.700000047683716, 4.0]     # clamped to max_delay
    assert y[0, 0].tolist() == [1, 2, 3, 4, 5, 6]
    assert y[0, 1].tolist() == [0, 0, 1, 2, 3, 4]
    assert y[0, 2].tolist() == [0, 0, 0, 0, 1, 2]
    assert d.steps.tolist() == [0, 2, 4]
    assert shift(x, torch.tensor([-1, 0, 1]))[0, 0].tolist() == [2, 3, 4, 5, 6, 0]


def test_delay_state_dict_into_lazy_module():
    d = Delay(4)
    d.delay.data = torch.tensor([0.0, 1.0, 2.0, 3.0])
    lazy = Delay()
    lazy.load_state_dict(d.state_dict())
    assert lazy.init and lazy.steps.tolist() == [0, 1, 2, 3]


# ------------------------------------------------------------------ recurrent block
def _recurrent(rng, n_in=6, n_out=5, k=3, delay=False):
    b = qb.Recurrent(params(k), n_in, n_out, delay=delay)
    _int_weights(b.input_synapse, rng, -30, 70)
    _int_weights(b.recurrent_synapse, rng, -60, 40)
    return b.eval()


def _reference_recurrent(b, x):
    """The chip's integer arithmetic: ``a[t] = W x[t] + R n[t-1]`` (weight units) into
    :func:`qblif.core.reference.step`; counts ``(N, C, T)`` (before the block's delays)."""
    syn = b.input_synapse
    w = syn._pre_hook_fx(syn.weight).detach().numpy().reshape(b.neuron.num_neurons, -1)
    w = np.rint(w * 64).astype(np.int64)
    r = np.rint(b.recurrent_matrix().detach().numpy() * 64).astype(np.int64)
    nrn = b.neuron
    out = np.zeros((x.shape[0], nrn.num_neurons, x.shape[-1]), np.int64)
    for s in range(x.shape[0]):
        state = ref.QBLIFState.zeros((nrn.num_neurons,))
        n = np.zeros(nrn.num_neurons, np.int64)
        for t in range(x.shape[-1]):
            a = w @ x[s, :, t].astype(np.int64) + r @ n
            n = ref.step(state, a, du=nrn.cx_current_decay - 1, dv=nrn.cx_voltage_decay,
                         vth=nrn.v_th_mant, max_burst=nrn.max_burst, reset_mode=nrn.reset_mode)
            out[s, :, t] = n
    return out


def test_recurrent_quantized_forward_is_chip_arithmetic():
    rng = np.random.default_rng(0)
    b = _recurrent(rng)
    x = rng.integers(0, 3, size=(4, 6, 12))
    with torch.no_grad():
        y = b(torch.tensor(x, dtype=torch.float32)).numpy()
    want = _reference_recurrent(b, x)
    np.testing.assert_array_equal(y[..., 1:], want[..., :-1])     # delay_shift: one step
    assert np.all(y[..., 0] == 0)
    assert want.sum() > 0 and want.max() > 1                      # bursts, not only spikes
    # the feedback matters: without R the counts differ
    b.recurrent_synapse.weight.data.zero_()
    with torch.no_grad():
        assert not np.array_equal(b(torch.tensor(x, dtype=torch.float32)).numpy(), y)


def test_recurrent_gradients_reach_every_parameter():
    rng = np.random.default_rng(1)
    b = _recurrent(rng, delay=True).train()
    b.delay.delay.data = torch.tensor([0.5, 1.5, 2.5, 0.0, 1.0])
    x = torch.tensor(rng.integers(0, 3, size=(4, 6, 12)), dtype=torch.float32)
    for quantized in (True, False):
        set_quantized(b, quantized)
        b.zero_grad()
        y = b(x)
        (y * torch.linspace(-1, 1, y.shape[-1])).sum().backward()
        for name, p in (('W', b.input_synapse.weight), ('R', b.recurrent_synapse.weight),
                        ('threshold', b.neuron.threshold_param), ('delay', b.delay.delay)):
            assert p.grad is not None and p.grad.abs().sum() > 0, (quantized, name)


def test_recurrent_export_is_lavadls_dense_rec(tmp_path):
    """Same datasets as lava-dl's ``cuba.Recurrent(delay=True).export_hdf5``, with the
    QB-LIF neuron group; ``load_network`` rebuilds the same forward."""
    from lava.lib.dl.slayer.block import cuba
    rng = np.random.default_rng(2)
    ours = _recurrent(rng, delay=True)
    ours.delay.delay.data = torch.tensor([0.0, 3.0, 1.0, 2.0, 4.0])
    theirs = cuba.Recurrent(dict(threshold=1.0, current_decay=0.5, voltage_decay=0.1), 6, 5,
                            delay=True)
    x = torch.tensor(rng.integers(0, 3, size=(2, 6, 14)), dtype=torch.float32)
    theirs(x)
    path = tmp_path / "rec.net"
    export_network([ours], path, input_shape=(6,), input_bits=2, timesteps=10)
    with h5py.File(tmp_path / "lavadl.net", "w") as f:
        theirs.export_hdf5(f.create_group("layer/0"))
    with h5py.File(path) as f, h5py.File(tmp_path / "lavadl.net") as g:
        mine, lava = f["layer/0"], g["layer/0"]
        assert set(mine) == set(lava)
        assert mine["type"][0] == b"dense_rec"
        assert mine["weight"].shape == (5, 6) and mine["weight_rec"].shape == (5, 5)
        assert mine["delay"][()].tolist() == [0, 3, 1, 2, 4]
        assert mine["neuron/type"][()] == b"QBLIF"
        np.testing.assert_array_equal(mine["weight_rec"][()],
                                      np.rint(ours.recurrent_matrix().detach().numpy() * 64))
    net = load_network(path)
    loaded = net.blocks[0]
    assert isinstance(loaded, qb.Recurrent) and loaded.delay.steps.tolist() == [0, 3, 1, 2, 4]
    with torch.no_grad():
        np.testing.assert_array_equal(net(x).numpy(), ours(x).numpy())
    assert latency([ours]) == 1 + 4


def test_recurrent_does_not_change_callers_params():
    p = params()
    qb.Recurrent(p, 3, 2)
    assert 'persistent_state' not in p


# ------------------------------------------------------------------ training
IN_BITS = 4
T_IN = 2
BATCH = 64


def _digits_model(seed=0):
    torch.manual_seed(seed)
    p = params(k=3, threshold=1.5, current_decay=1.0, voltage_decay=0.0)
    blocks = [qb.Recurrent(p, 64, 32, weight_scale=2, delay=True),
              qb.Dense(p, 32, 10, weight_scale=2, delay=True)]
    gen = torch.Generator().manual_seed(seed)
    for b in blocks:   # random integer axonal delays, learnable from there
        b.delay.delay.data = torch.randint(0, 2, b.delay.delay.shape, generator=gen).float() \
            + 0.5
    return torch.nn.ModuleList(blocks)


def _forward(blocks, x_int, steps):
    x = torch.tensor(x_int, dtype=torch.float32).unsqueeze(-1).expand(*x_int.shape, steps)
    outs = []
    for b in blocks:
        x = b(x)
        outs.append(x)
    return outs


def _digits(split, limit=None):
    from qblif.core.data import load_dataset
    from qblif.core.encoding import quantize_intensity
    x, y = load_dataset("digits", split, limit)
    return quantize_intensity(x, IN_BITS).reshape(len(x), -1), y


def test_recurrent_delay_network_trains_on_digits(tmp_path):
    """One epoch (Adam, quantized forward, full BPTT through the recurrence): the training
    loss falls, the delays moved, test accuracy beats chance by far, and the exported file
    reloads to the identical quantized forward (counts of every layer)."""
    pytest.importorskip("sklearn")
    import torch.nn.functional as F
    blocks = _digits_model()
    steps = T_IN + latency(blocks)
    x_tr, y_tr = _digits("train")
    opt = torch.optim.Adam(blocks.parameters(), lr=1e-2)
    gen = torch.Generator().manual_seed(0)
    perm = torch.randperm(len(x_tr), generator=gen).numpy()
    delays0 = [b.delay.delay.detach().clone() for b in blocks]
    losses = []
    blocks.train()
    for i in range(0, len(perm), BATCH):
        idx = perm[i:i + BATCH]
        logits = _forward(blocks, x_tr[idx], steps)[-1].sum(-1)
        loss = F.cross_entropy(logits, torch.tensor(y_tr[idx]))
        opt.zero_grad()
        loss.backward()
        opt.step()
        for b in blocks:
            b.neuron.clamp()
        losses.append(float(loss))
    assert np.mean(losses[-3:]) < np.mean(losses[:3])
    assert any(not torch.equal(d0, b.delay.delay.detach()) for d0, b in zip(delays0, blocks))
    blocks.eval()
    x_te, y_te = _digits("test")
    steps = T_IN + latency(blocks)
    with torch.no_grad():
        outs = _forward(blocks, x_te, steps)
    acc = float((outs[-1].sum(-1).argmax(1).numpy() == y_te).mean())
    assert acc > 0.5, acc
    path = tmp_path / "rec_digits.net"
    export_network(blocks, path, input_shape=(64,), input_bits=IN_BITS, timesteps=T_IN,
                   dataset="digits")
    net = load_network(path)
    with torch.no_grad():
        again = _forward(net.blocks, x_te[:40], steps)
    for i, (a, b) in enumerate(zip(again, outs)):
        np.testing.assert_array_equal(a.numpy(), b[:40].numpy(), err_msg=f"layer {i}")
    assert all(o.sum() > 0 for o in outs)
    # the recurrent layer's counts are the chip's arithmetic (delays and step undone)
    rec = blocks[0]
    x = np.repeat(x_te[:8, :, None], steps, axis=-1)
    want = _reference_recurrent(rec, x)
    d = rec.delay.steps
    got = outs[0][:8].numpy()
    for c in range(got.shape[1]):
        np.testing.assert_array_equal(got[:, c, 1 + d[c]:], want[:, c, :steps - 1 - d[c]])


def _trained_file(tmp_path):
    """A small recurrent+delay network after a few training batches, exported."""
    import torch.nn.functional as F
    blocks = _digits_model(seed=1)
    steps = T_IN + latency(blocks)
    x_tr, y_tr = _digits("train", limit=128)
    opt = torch.optim.Adam(blocks.parameters(), lr=3e-3)
    for i in range(0, 128, 32):
        loss = F.cross_entropy(_forward(blocks, x_tr[i:i + 32], steps)[-1].sum(-1),
                               torch.tensor(y_tr[i:i + 32]))
        opt.zero_grad()
        loss.backward()
        opt.step()
    path = tmp_path / "rec.net"
    export_network(blocks, path, input_shape=(64,), input_bits=IN_BITS, timesteps=T_IN,
                   dataset="digits")
    return path


def test_compiled_recurrent_delay_network_equals_slayer(tmp_path):
    """The compiled graph of a trained recurrent QB-LIF network with axonal delays equals
    SLAYER's quantized forward on every layer and step, in both encodings, over several
    samples (per-sample reset: the delay lines and the recurrent feedback forget the
    previous sample). The dense_rec layer delays its spikes (lava-dl's output delay, the
    feedback undelayed); the dense layer its synaptic input (stock NetX's reading, the same
    for a bias-free neuron at rest). The numpy oracle agrees too."""
    pytest.importorskip("sklearn")
    import qblif
    from qblif.exact.oracle import forward
    from qblif.verify import first_mismatch, slayer_counts
    path = _trained_file(tmp_path)
    steps = T_IN + latency(load_network(path).blocks)   # as in training: room for the delays
    frames, _ = _digits("test", limit=3)
    for encoding in ("graded", "binary"):
        with qblif.compile(path, encoding=encoding) as net:
            out = net.run(frames, steps)
            want = slayer_counts(path, net.ir, frames, steps)
            oracle = forward(net.ir, frames, steps)
        assert sorted(want) == sorted(out) == [0, 1]
        assert all(want[i].sum() > 0 for i in want)
        assert first_mismatch(out, want) is None
        assert first_mismatch(oracle, want, ("oracle", "SLAYER")) is None
        assert any(want[0][s].sum() > 0 for s in (1, 2))      # later samples say something


def test_dense_rec_delays_shift_its_spikes_not_its_feedback(tmp_path):
    """The oracle's reading of a dense_rec layer's ``delay`` (lava-dl's): a continuous run
    gives each neuron's spikes of the undelayed layer, ``delay[j]`` steps later; the
    feedback sees the undelayed spikes (else the shifted counts would not match). The
    compiled Lava graph, run continuously (no reset: no clearing), equals the oracle."""
    pytest.importorskip("sklearn")
    import qblif
    from qblif.ir import output_delays as _output_delays
    from qblif.exact.oracle import simulate
    path = _trained_file(tmp_path)
    frames, _ = _digits("test", limit=2)
    with qblif.compile(path) as net:
        rec = net.ir.nodes[0]["layer"]
        d = np.asarray(_output_delays(rec), int)
        whole = simulate(net.ir, frames, 6, reset="none")
        lava = net.run(frames, 6, reset="none", timeline=True)
        for i in (0, 1):
            np.testing.assert_array_equal(lava[i], whole[i], err_msg=f"layer {i}")
        delayed = whole[0]
        rec.delay = None
        plain = simulate(net.ir, frames, 6, reset="none")[0]
    assert d.max() > 0 and plain.sum() > 0
    assert not np.array_equal(delayed, plain)
    total = plain.shape[0]
    for j in range(plain.shape[1]):
        np.testing.assert_array_equal(delayed[d[j]:, j], plain[:total - d[j], j])
        assert not delayed[:d[j], j].any()
