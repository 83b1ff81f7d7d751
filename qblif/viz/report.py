"""Resource report (text), graph picture (matplotlib) and GraphML export of the IR."""
from __future__ import annotations

import networkx as nx

from qblif.ir import in_message, layers
from qblif.passes.resources import describe_host_estimate, host_estimate


def layer_label(ly) -> str:
    if ly.kind in ("input", "flatten", "average"):
        enc = "/SDNN" if ly.neuron is not None else ""
        return f"{ly.index}:{ly.kind}{enc} {'x'.join(map(str, ly.shape))}"
    k = f" K={ly.neuron.max_burst}" if ly.neuron.kind == "QBLIF" else ""
    return f"{ly.index}:{ly.kind}/{ly.neuron.kind}{k} {'x'.join(map(str, ly.shape))}"


def text_report(net) -> str:
    g = net.ir
    run = net.last_run or {}
    stats = run.get("layers", {})
    hdr = (f"{'layer':<26}{'neurons':>8}{'synapses':>10}{'fan-in':>8}{'fan-out':>8}"
           f"{'msg bits':>9}{'lanes':>6}{'w bits':>7}{'w exp':>6}{'cores':>6}"
           f"{'spikes/step':>12}{'SynOps/step':>12}")
    lines = [f"model: {g.graph.get('path')}   encoding: {g.graph['encoding']}   "
             f"input: {'x'.join(map(str, g.graph['input_shape']))} "
             f"({g.graph['input_bits']}-bit graded)", hdr, "-" * len(hdr)]
    tot_n = tot_s = 0
    tot_ops = 0.0
    for ly in layers(g):
        r = ly.resources
        if not ly.synaptic:
            lines.append(f"{layer_label(ly):<26}")
            continue
        st = stats.get(ly.index)
        act = (f"{st['spikes_per_step']:>12.1f}{st['synops_per_step']:>12.1f}" if st
               else f"{'-':>12}{'-':>12}")
        tot_n += r["neurons"]
        tot_s += r["synapses"]
        tot_ops += st["synops_per_step"] if st else 0.0
        msg = in_message(g, ly.index)
        lines.append(f"{layer_label(ly):<26}{r['neurons']:>8}{r['synapses']:>10}{r['fan_in']:>8.1f}"
                     f"{r['fan_out']:>8.1f}{msg.wire_bits:>9}{msg.lanes:>6}"
                     f"{ly.weight_bits:>7}{ly.weight_exp:>6}{r['cores']:>6}{act}")
    lines.append("-" * len(hdr))
    lines.append(f"total: {tot_n} neurons, {tot_s} synapses, {mapping_line(g.graph['mapping'])}")
    est = run.get("host_estimate") or host_estimate(g, 1, g.graph.get("timesteps") or 1)
    exact = bool(run) and run.get("engine") == "exact"
    lines.append(describe_host_estimate(est) + ("" if run else ", for 1 sample")
                 + (" (not used: this run took the exact engine)" if exact else ""))
    if exact:
        lines.append(f"measured: {tot_ops:.1f} SynOps/step over {run['samples']} sample(s) x "
                     f"{run['steps']} steps; exact engine ({run['device']}, {run['threads']} "
                     f"thread(s)) {run['samples'] / max(run['wall_s'], 1e-9):.1f} samples/s")
    elif run:
        lines.append(f"measured: {tot_ops:.1f} SynOps/step over {run['samples']} sample(s) x "
                     f"{run['steps']} steps; Lava CPU {run['steps_per_s']:.1f} steps/s "
                     f"({run['processes']} processes"
                     + (f", {run['lanes']} sample lanes, "
                        f"{run['samples'] / max(run['wall_s'], 1e-9):.1f} samples/s"
                        if run.get("lanes", 1) > 1 else "") + ")")
    lines.append("SynOps = unit events x fan-out (a burst of n costs n x fan-out in both encodings)")
    if g.graph.get("stateful"):
        lines.append("SDNN: sigma-delta layers (Lava SigmaDelta/Sigma/Delta) send graded messages "
                     "and are never reset: streamed samples are not independent; one SDNN "
                     "message costs 1 x fan-out")
    if g.graph.get("graded_sdnn_edges"):
        lines.append("binary encoding: SDNN outputs stay graded (no thermometer lanes) into "
                     f"layer(s) {', '.join(map(str, g.graph['graded_sdnn_edges']))}")
    return "\n".join(lines)


def mapping_line(m) -> str:
    """``'Loihi 2 estimate 62 neurocore(s) on 1 chip(s) (mapped: ...)'`` or why it does not
    fit."""
    if not m.fits:
        return f"does not fit {m.chip.name}: {m.reason}"
    return (f"{m.chip.title} estimate {m.cores} neurocore(s) on {m.chips} chip(s) (mapped: "
            "per-core neuron state, synaptic memory and axon limits; qblif map for the table)")


def export_graph(g) -> nx.DiGraph:
    """A copy of the IR with only GraphML-friendly (scalar) attributes."""
    h = nx.DiGraph()
    for ly in layers(g):
        attrs = dict(kind=ly.kind, shape="x".join(map(str, ly.shape)), label=layer_label(ly))
        if ly.neuron is not None:
            attrs.update(neuron=ly.neuron.kind, max_burst=int(ly.neuron.max_burst),
                         reset_mode=ly.neuron.reset_mode, du=int(ly.neuron.du),
                         dv=int(ly.neuron.dv), process=str(ly.proc),
                         reset_offset=int(ly.reset_offset))
        for k, v in ly.resources.items():
            if isinstance(v, (int, float, str)):
                attrs[k] = v
        if ly.synapse is not None:
            attrs.update(weight_bits=ly.weight_bits, weight_exp=ly.weight_exp)
        h.add_node(ly.index, **attrs)
    for u, v, d in g.edges(data=True):
        m = d["message"]
        h.add_edge(u, v, bits=m.bits, max=m.max, signed=m.signed, graded_only=m.graded_only,
                   encoding=m.encoding, lanes=m.lanes, message_bits=m.wire_bits,
                   recurrent=bool(d.get("recurrent")))
    return h


def write_graphml(g, path):
    nx.write_graphml(export_graph(g), str(path))


def draw_graph(g, path):
    """Save a left-to-right picture of the layer graph (PNG, or any matplotlib format)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    h = export_graph(g)
    order = sorted(h.nodes)
    pos = {n: (k, 0) for k, n in enumerate(order)}
    fig, ax = plt.subplots(figsize=(max(4, 2.2 * len(order)), 2.4))
    nx.draw_networkx_nodes(h, pos, ax=ax, node_size=900, node_color="#cfe3ff")
    nx.draw_networkx_edges(h, pos, ax=ax, arrows=True, node_size=900)
    nx.draw_networkx_labels(h, pos, ax=ax, labels={n: str(n) for n in h.nodes}, font_size=9)
    for n in h.nodes:
        ax.annotate(h.nodes[n]["label"].split(":", 1)[1], pos[n], xytext=(0, -28),
                    textcoords="offset points", ha="center", fontsize=7)
    edge_labels = {(u, v): (f"{d.get('lanes', 1)}x1b" if d.get("lanes", 1) > 1
                            else f"{d.get('bits', 0) or 1}b") for u, v, d in h.edges(data=True)}
    nx.draw_networkx_edge_labels(h, pos, edge_labels=edge_labels, ax=ax, font_size=7)
    ax.set_axis_off()
    ax.margins(0.15, 0.6)
    fig.tight_layout()
    fig.savefig(str(path), dpi=120)
    plt.close(fig)
