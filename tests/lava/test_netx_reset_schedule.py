"""reset='netx' on a file whose first layer is synaptic (no ``input`` layer): stock NetX
numbers its neuron blocks from 0 at that layer (an ``input`` layer counts only with a
neuron), so block p resets at ``t % R == (o + 1 + p) % R``. The compiled run's whole
timeline equals stock NetX's on every layer and step."""
from __future__ import annotations

import numpy as np
import pytest

import qblif
from qblif.ir import layers
from stock_netx import run_stock


@pytest.mark.parametrize("interval,offset", [(4, 0), (3, 2)])
def test_netx_schedule_without_input_layer_equals_stock(tmp_path, interval, offset):
    pytest.importorskip("torch")
    from lavadl_nets import cuba_dense_pair
    path = cuba_dense_pair(tmp_path / "cuba.net")
    steps, n_s = 6, 3
    frames = np.random.default_rng(0).integers(0, 16, size=(n_s, 10))
    with qblif.compile(path, input_bits=4) as net:
        assert layers(net.ir)[0].kind == "dense" and net.ir.graph["input_neuron"] is None
        tl = net.run(frames, steps, timeline=True, reset="netx", reset_interval=interval,
                     reset_offset=offset)
        total = n_s * steps + net.ir.graph["depth"]
    inputs = np.zeros((total, 10), np.int32)
    inputs[:n_s * steps] = np.repeat(frames, steps, 0)
    ref = run_stock(path, inputs, total, input_message_bits=4, reset_interval=interval,
                    reset_offset=offset)
    assert set(tl) == {0, 1} and tl[0].sum() > 0 and tl[1].sum() > 0
    for i in tl:
        np.testing.assert_array_equal(tl[i], ref[i].astype(np.int32), err_msg=f"layer {i}")
