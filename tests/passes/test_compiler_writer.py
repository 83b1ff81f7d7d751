"""Test helper: write NetX HDF5 files in the docs/netx_format.md layout with h5py,
and generate random QB-LIF / CUBA networks. (Also a test that the reader round-trips.)"""
from __future__ import annotations

import h5py
import numpy as np


def _str(h, key, value):
    h.create_dataset(key, (1,), "S10", [value.encode("ascii")])


def write_net(path, layer_specs, input_shape=None, input_bits=4, timesteps=None, meta=True):
    """layer_specs: list of dicts ``type, shape, weight, neuron{...}, ...`` (file order)."""
    with h5py.File(path, "w") as f:
        for i, spec in enumerate(layer_specs):
            h = f.create_group(f"layer/{i}")
            for key, value in spec.items():
                if key == "type":
                    _str(h, "type", value)
                elif key == "neuron":
                    for nk, nv in value.items():
                        if isinstance(nv, str):
                            h.create_dataset(f"neuron/{nk}", data=np.bytes_(nv))
                        else:
                            h.create_dataset(f"neuron/{nk}", data=nv)
                else:
                    h.create_dataset(key, data=value)
        if meta:
            q = f.create_group("qblif")
            if input_shape is not None:
                q.create_dataset("inputShape", data=np.array(input_shape))
            q.create_dataset("inputBits", data=input_bits)
            if timesteps:
                q.create_dataset("timesteps", data=timesteps)
            q.create_dataset("encoding", data=np.bytes_("direct"))
    return path


def qblif_neuron(rng, channels, k, reset_mode, per_channel, vth_scale=300):
    vth = rng.integers(vth_scale // 2, vth_scale, size=channels) if per_channel \
        else int(rng.integers(vth_scale // 2, vth_scale))
    return {"type": "QBLIF", "vThMant": vth, "iDecay": int(rng.integers(1, 4096)),
            "vDecay": int(rng.integers(0, 4096)), "maxBurst": k, "resetMode": reset_mode,
            "refDelay": 1, "messageBits": int(k).bit_length()}


def cuba_neuron(rng, vth_scale=300):
    return {"type": "CUBA", "vThMant": int(rng.integers(vth_scale // 2, vth_scale)),
            "iDecay": int(rng.integers(1, 4096)), "vDecay": int(rng.integers(0, 4096)),
            "refDelay": 1, "gradedSpike": False}


def even_weights(rng, shape, scale=40):
    return (2 * rng.integers(-scale // 2, scale // 2 + 1, size=shape)).astype(np.float32)


def dense_net(rng, sizes=(12, 8, 6), k=4, reset_mode="subtract", per_channel=False, cuba=()):
    """input (sizes[0],) -> dense ... ; layers whose position is in ``cuba`` are CUBA."""
    specs = [{"type": "input", "shape": np.array([sizes[0]])}]
    for j, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        neuron = cuba_neuron(rng, 150) if j in cuba else qblif_neuron(rng, b, k, reset_mode,
                                                                         per_channel, 150 + 100 * j)
        specs.append({"type": "dense", "shape": np.array([b]), "inFeatures": a,
                      "outFeatures": b, "weight": even_weights(rng, (b, a)), "neuron": neuron})
    return specs, (sizes[0],)


def conv_net(rng, c_in=2, hw=6, k=2, reset_mode="subtract", per_channel=True, pool=True):
    """input (c_in, hw, hw) -> conv 3x3 pad 1 -> [pool 2] -> flatten -> dense 5."""
    c1 = 3
    specs = [{"type": "input", "shape": np.array([c_in, hw, hw])},
             {"type": "conv", "shape": np.array([c1, hw, hw]), "inChannels": c_in,
              "outChannels": c1, "kernelSize": np.array([3, 3]), "stride": np.array([1, 1]),
              "padding": np.array([1, 1]), "dilation": np.array([1, 1]), "groups": 1,
              "weight": even_weights(rng, (c1, c_in, 3, 3)),
              "neuron": qblif_neuron(rng, c1, k, reset_mode, per_channel, 250)}]
    side = hw
    if pool:
        side = hw // 2
        specs.append({"type": "pool", "shape": np.array([c1, side, side]),
                      "kernelSize": np.array([2, 2]), "stride": np.array([2, 2]),
                      "padding": np.array([0, 0]), "dilation": np.array([1, 1]),
                      "weight": np.full((1, 1, 2, 2), 64, np.float32),
                      "neuron": qblif_neuron(rng, c1, k, reset_mode, per_channel, 150)})
    n = c1 * side * side
    specs.append({"type": "flatten", "shape": np.array([n, 1, 1])})
    specs.append({"type": "dense", "shape": np.array([5]), "inFeatures": n, "outFeatures": 5,
                  "weight": even_weights(rng, (5, n)),
                  "neuron": qblif_neuron(rng, 5, k, reset_mode, per_channel, 200)})
    return specs, (c_in, hw, hw)


def test_reader_roundtrip(tmp_path):
    from qblif.ir.from_netx import read
    rng = np.random.default_rng(0)
    specs, shape = conv_net(rng)
    g = read(write_net(tmp_path / "m.net", specs, shape))
    kinds = [g.nodes[i]["layer"].kind for i in sorted(g.nodes)]
    assert kinds == ["input", "conv", "pool", "flatten", "dense"]
    assert g.nodes[1]["layer"].neuron.max_burst == 2
    assert g.graph["input_bits"] == 4
