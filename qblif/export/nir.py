"""Export a compiled network (NetX file) to NIR: ``qblif export-nir model.net out.nir``.

Every neuron layer becomes a synaptic node plus a ``CubaLIF`` (the closest standard
node, read by every NIR tool): ``dense`` -> ``Linear``, ``conv`` -> ``Conv2d``, a uniform
``pool`` -> ``SumPool2d`` + ``Scale`` (a non-uniform one: a depthwise ``Conv2d``),
``flatten`` -> ``Flatten``. Float parameters (SLAYER units: weight ``w_int / 64``,
threshold ``vth / 64``, per-step voltage bias ``(bias << 6) / 4096``) follow the
quantization rules of docs/nir.md backwards at the time step ``dt``:
``tau_syn = dt * 4096 / (du + 1)``, ``tau_mem = dt * 4096 / dv`` (``dv = 0``: ``dt * 2**60``,
practically no leak), ``w_in = tau_syn / dt``, ``r = tau_mem / dt`` (unit gains),
``v_leak = bias * tau_mem / dt``, ``v_reset = 0``.

The metadata extension ``metadata["qblif"]`` on each CubaLIF (``version``, ``kind``
``QBLIF``/``CUBA``, ``max_burst`` K, ``reset_mode``, ``du``, ``dv``, ``vth``, ``bias``) and on
the graph (``version``, ``dt``, ``input_bits``, ``timesteps``, ``dataset``) lets our
importer restore the layer exactly; other tools see a K = 1, reset-to-zero CubaLIF.
"""
from __future__ import annotations

import io

import numpy as np

from qblif.core.errors import CompileError
from qblif.ir import layers
from qblif.nir.graph import META_KEY
from qblif.ir.from_nir import DEFAULT_DT

META_VERSION = 1
NO_LEAK = 2.0 ** 60        # tau_mem / dt for dv = 0


def _h5(a: np.ndarray):
    """A 0-d array as a Python scalar (nir.write compresses arrays; h5py refuses 0-d ones)."""
    return a.item() if a.ndim == 0 else a


def _neuron_node(ly, dt):
    import nir
    n, shape = ly.neuron, tuple(ly.shape)
    full = np.ones(shape)
    tau_syn = dt * 4096.0 / (n.du + 1)
    tau_mem = dt * (4096.0 / n.dv if n.dv else NO_LEAK)
    vth = np.asarray(n.vth, np.int64)
    bias = np.broadcast_to(np.asarray(n.bias_mant, np.float64), shape) * 2.0 ** n.bias_exp / 4096
    ext = dict(version=META_VERSION, kind=n.kind, max_burst=int(n.max_burst),
               reset_mode=n.reset_mode, du=int(n.du), dv=int(n.dv), vth=_h5(vth))
    if ly.bias is not None:
        ext["bias"] = _h5(np.asarray(ly.bias, np.int64))
    return nir.CubaLIF(tau_syn=full * tau_syn, tau_mem=full * tau_mem, r=full * tau_mem / dt,
                       v_leak=bias * tau_mem / dt, v_threshold=full * vth / 64.0,
                       v_reset=np.zeros(shape), w_in=full * tau_syn / dt,
                       metadata={META_KEY: ext})


def _synapse_nodes(ly):
    """[(suffix, node)] of the layer's synapse (file order weights / 64)."""
    import nir
    w = np.asarray(ly.weight, np.float64) / 64.0
    if ly.kind == "dense":
        return [("", nir.Linear(weight=w))]
    c_in = ly.in_shape[0]
    if ly.kind == "pool" and np.ptp(w) == 0 and tuple(ly.dilation) == (1, 1):
        return [("", nir.SumPool2d(kernel_size=np.array(ly.kernel), stride=np.array(ly.stride),
                                   padding=np.array(ly.padding))),
                (".scale", nir.Scale(scale=np.full(tuple(ly.shape), float(w.reshape(-1)[0]))))]
    groups = ly.groups
    if ly.kind == "pool":
        w = np.broadcast_to(w, (c_in, 1) + w.shape).copy()
        groups = c_in
    return [("", nir.Conv2d(input_shape=tuple(int(s) for s in ly.in_shape[1:]), weight=w,
                            stride=tuple(ly.stride), padding=tuple(ly.padding),
                            dilation=tuple(ly.dilation), groups=int(groups),
                            bias=np.zeros(w.shape[0])))]


def to_nir(ir, dt: float = DEFAULT_DT) -> "nir.NIRGraph":  # noqa: F821
    """The ``nir.NIRGraph`` of a compiled IR (after the passes: in_shape, vth normalised)."""
    import nir
    if ir.graph.get("stateful") or any(ly.neuron is not None and ly.neuron.kind == "SDNN"
                                       for ly in layers(ir)):
        raise CompileError("SDNN (sigma-delta) layers have no NIR node; export QB-LIF/CUBA "
                           "networks", None, "neuron/type")
    in_shape = tuple(int(s) for s in ir.graph["input_shape"])
    nodes = {"input": nir.Input(input_type={"input": np.array(in_shape)})}
    chain = ["input"]
    for ly in layers(ir):
        i = ly.index
        if ly.kind == "input":
            continue
        if ly.kind == "flatten":
            name = f"flatten{i}"
            nodes[name] = nir.Flatten(input_type={"input": np.array(ly.in_shape)},
                                      start_dim=0, end_dim=-1)
            chain.append(name)
            continue
        for suffix, node in _synapse_nodes(ly):
            nodes[f"syn{i}{suffix}"] = node
            chain.append(f"syn{i}{suffix}")
        nodes[f"lif{i}"] = _neuron_node(ly, dt)
        chain.append(f"lif{i}")
    last = layers(ir)[-1]
    nodes["output"] = nir.Output(output_type={"output": np.array(tuple(last.shape))})
    chain.append("output")
    meta = dict(version=META_VERSION, dt=float(dt))
    for key in ("input_bits", "timesteps", "dataset"):
        if ir.graph.get(key) is not None:
            meta[key] = ir.graph[key]
    return nir.NIRGraph(nodes=nodes, edges=list(zip(chain[:-1], chain[1:])),
                        metadata={META_KEY: meta})


def export_nir(model, out_path, dt: float = DEFAULT_DT) -> None:
    """Compile ``model`` (a NetX file) and write its NIR graph to ``out_path`` atomically."""
    import nir
    from qblif import compile as compile_net
    from qblif.core.fileio import atomic_write_bytes
    if not np.isfinite(dt) or dt <= 0:
        raise CompileError(f"dt={dt} must be a positive finite time step")
    with compile_net(model) as net:
        graph = to_nir(net.ir, dt)
    buf = io.BytesIO()
    nir.write(buf, graph)
    atomic_write_bytes(str(out_path), buf.getvalue())
