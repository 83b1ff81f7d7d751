"""``qblif map MODEL.{net,nir} [--chip loihi2] [--json OUT] [--plot OUT.png]
[--dataset D --samples N | --input X.npy] [--steps T] [--host-input]``: the mapping of a
compiled network on a chip (pieces, cores, binding limit per layer; totals) and, with
activity from the exact engine, the predicted time and energy per inference in both burst
encodings and NeuroBench's metrics (docs/mapping.md). A network that does not fit is one
line with the reason, exit 2."""
from __future__ import annotations

import json

from qblif.cli.compile import add_nir_args, compile_from_args
from qblif.core.chip import CHIPS
from qblif.core.data import DATASETS
from qblif.ir import ENCODINGS
from qblif.schedule import RUN_RESETS


def register(sub):
    p = sub.add_parser(
        "map", help="map a model on Loihi 2 cores: pieces, cores, binding limits, time, energy",
        description="Partition every layer of MODEL into core-sized pieces under each per-core "
                    "limit of the chip, place them on cores and chips, and print a table per "
                    "layer. With --dataset or --input, run the exact engine for the activity "
                    "and print the predicted time and energy per inference (binary and graded "
                    "burst encodings) and NeuroBench's metrics. Constants and their sources: "
                    "docs/mapping.md.",
        epilog="example: qblif map netx_models/fmnist_qblif_conv.net --dataset fashion-mnist "
               "--samples 20 --plot map.png")
    p.add_argument("model", help="NetX HDF5 (.net) or NIR (.nir) file")
    p.add_argument("--chip", choices=tuple(CHIPS), default="loihi2", help="target chip")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--dataset", choices=DATASETS, help="test images for the activity")
    src.add_argument("--input", metavar="FILE.npy",
                     help="ints (S, *input shape) held for --steps each (as qblif run --input)")
    p.add_argument("--samples", type=int, default=10, help="test images with --dataset")
    p.add_argument("--steps", type=int, default=None,
                   help="timesteps per inference (default: the file's /qblif/timesteps)")
    p.add_argument("--reset", choices=RUN_RESETS, default="sample",
                   help="reset schedule of the activity run (as qblif run)")
    p.add_argument("--reset-interval", type=int, default=None, help="with --reset netx")
    p.add_argument("--reset-offset", type=int, default=0, help="with --reset netx")
    p.add_argument("--encoding", choices=ENCODINGS, default="graded",
                   help="burst encoding of the mapped layout (binary: thermometer lanes take "
                        "axons and synaptic memory); the costs are printed for both")
    p.add_argument("--host-input", action="store_true",
                   help="keep an input layer with a neuron on the host (stock NetX's "
                        "skip_layers=1), not on cores")
    p.add_argument("--json", metavar="OUT.json", help="write the mapping and costs as JSON")
    p.add_argument("--plot", metavar="OUT.png", help="save the cores on the chip mesh")
    add_nir_args(p)
    p.set_defaults(func=cmd_map)


def layer_rows(m, g) -> list:
    """One dict per mapped layer: label, neurons, synapses, pieces, the fullest use of each
    per-core limit and the binding limit."""
    from qblif.passes.mapping import LIMITS
    from qblif.viz.report import layer_label
    rows = []
    for i, ps in m.pieces.items():
        use = [p.use(m.chip, m.family[i]) for p in ps]
        rows.append(dict(layer=i, label=layer_label(g.nodes[i]["layer"]),
                         neurons=sum(p.neurons for p in ps),
                         synapses=sum(p.synapses for p in ps), pieces=len(ps),
                         use={k: max(u[k] for u in use) for k in LIMITS},
                         binding=m.binding(i)))
    return rows


def table(m, rows) -> str:
    hdr = (f"{'layer':<26}{'neurons':>8}{'synapses':>10}{'pieces':>7}{'neur%':>7}{'syn%':>7}"
           f"{'axin%':>7}{'axout%':>7}  binding limit")
    out = [hdr, "-" * len(hdr)]
    for r in rows:
        u = r["use"]
        out.append(f"{r['label']:<26}{r['neurons']:>8}{r['synapses']:>10}{r['pieces']:>7}"
                   f"{u['neurons']:>7.0%}{u['synaptic memory']:>7.0%}{u['axons in']:>7.0%}"
                   f"{u['axons out']:>7.0%}  {r['binding']}")
    out.append("-" * len(hdr))
    out.append(f"total: {m.cores} cores on {m.chips} chip(s) of {m.chip.name} "
               f"({m.chip.cores_per_chip} cores per chip); {m.inter_chip} neurons send "
               "to another chip")
    return "\n".join(out)


def _activity(args, net):
    """Run the exact engine on the dataset or --input: (steps, events, counts)."""
    import numpy as np

    from qblif.core.frames import dataset_frames, file_steps
    steps = file_steps(net, args.steps)
    if args.dataset:
        frames, _ = dataset_frames(net, args.dataset, args.samples)
    else:
        try:
            frames = np.load(args.input, allow_pickle=False)
        except ValueError as exc:
            raise ValueError(f"{args.input}: not a .npy array ({exc})") from None
    out = net.run(frames, steps, engine="exact", reset=args.reset,
                  reset_interval=args.reset_interval, reset_offset=args.reset_offset)
    return steps, net.last_run["events"], out


def cost_lines(m, g, steps, events, out) -> tuple:
    """Printed lines and a JSON-ready dict of the costs in both encodings and NeuroBench's
    metrics."""
    from qblif.passes import neurobench as nb
    from qblif.passes.cost import estimate_cost
    lines, js = [], {"steps": steps, "encodings": {}}
    for enc in ENCODINGS:
        c = estimate_cost(m, g, events, steps, enc)
        e = c.energy_j
        js["encodings"][enc] = dict(step_s=c.step_s, inference_s=c.inference_s, fps=c.fps,
                                    energy_j=e, synops_per_step=c.synops_per_step,
                                    synaptic_operations=nb.synaptic_operations(g, events, enc))
        lines.append(f"{enc:>6} encoding: {c.inference_s * 1e3:.4g} ms per inference "
                     f"({steps} steps of {c.step_s * 1e6:.4g} us; {c.fps:.1f} inferences/s), "
                     f"{e['total'] * 1e3:.4g} mJ (SynOps {e['synops'] * 1e3:.3g}, neuron "
                     f"updates {e['updates'] * 1e3:.3g}, static {e['static'] * 1e3:.3g})")
    js["neurobench"] = dict(Footprint=nb.footprint(g), ConnectionSparsity=nb.connection_sparsity(g),
                            ActivationSparsity=nb.activation_sparsity(g, out))
    nbs = js["neurobench"]
    ops = {k: js["encodings"][k]["synaptic_operations"] for k in ENCODINGS}
    lines.append(f"NeuroBench: Footprint {nbs['Footprint']} B, ConnectionSparsity "
                 f"{nbs['ConnectionSparsity']:.3f}, ActivationSparsity "
                 f"{nbs['ActivationSparsity']:.3f}, SynapticOperations per sample: "
                 + "; ".join(f"{k} Effective_ACs {v['Effective_ACs']:.4g}, Effective_MACs "
                             f"{v['Effective_MACs']:.4g}, Dense {v['Dense']:.4g}"
                             for k, v in ops.items()))
    return lines, js


def _check_args(args):
    """Refuse bad options before anything runs (one line, exit 1)."""
    from qblif.core.fileio import writable_problem
    if args.samples < 1:
        raise ValueError(f"--samples={args.samples} must be >= 1")
    if args.steps is not None and args.steps < 1:
        raise ValueError(f"--steps={args.steps} must be >= 1")
    for opt, path in (("--json", args.json), ("--plot", args.plot)):
        problem = path and writable_problem(path)
        if problem:
            raise ValueError(f"{opt} {path}: cannot write ({problem})")


def cmd_map(args):
    from qblif.passes.mapping import map_network, require_fit
    _check_args(args)
    with compile_from_args(args) as net:
        m = map_network(net.ir, CHIPS[args.chip], on_chip_input=not args.host_input)
        require_fit(m)
        rows = layer_rows(m, net.ir)
        print(table(m, rows))
        js = dict(model=str(args.model), chip=m.chip.name, cores=m.cores, chips=m.chips,
                  inter_chip_neurons=m.inter_chip, layers=rows,
                  pieces=[dict(layer=p.layer, region=list(p.region), neurons=p.neurons,
                               synapses=p.synapses, syn_bits=p.syn_bits, axons_in=p.axons_in,
                               axons_out=p.axons_out, chip=p.chip, core=p.core)
                          for p in m.all_pieces()])
        if args.dataset or args.input:
            lines, js["cost"] = cost_lines(m, net.ir, *_activity(args, net))
            print("\n".join(lines))
    if args.plot:
        from qblif.viz.mapping import draw_mapping
        draw_mapping(m, args.plot)
        print(f"plot: {args.plot}")
    if args.json:
        from qblif.core.fileio import atomic_write_text
        atomic_write_text(args.json, json.dumps(js, indent=1, default=float))
        print(f"json: {args.json}")
    return 0
