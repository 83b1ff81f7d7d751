"""``qblif compile`` and ``qblif run``.

``qblif compile MODEL.net [--encoding graded|binary] [--graph FILE] [--graphml FILE]``
prints the resource report. ``qblif run MODEL.net --input FILE.npy [--steps T]
[--reset sample|none|netx]`` runs the samples or streams of a .npy file (docs/coverage.md).
``qblif run MODEL.net --dataset NAME --samples N
[--encoding E] [--steps T] [--engine lava|exact] [--models fast|stock] [--check]
[--plot FILE.png]`` streams N test images through one Lava run (with the fast process models,
or Lava's stock ones), or the batched exact engine (``--engine exact``: the same counts,
computed in torch); prints accuracy and the report (with measured SynOps); ``--check`` also
runs the SLAYER quantized forward of the same file and demands identical output counts (exit 1
otherwise), and a Lava run is also compared with the exact engine; ``--plot`` saves the run's
raster, burst histogram and activity (:mod:`qblif.cli.compare`, docs/plots.md). A
:class:`qblif.CompileError` is one line on
stderr and exit code 2 (``qblif.cli.main``).

NIR files (``.nir``, docs/nir.md) compile and run the same way (``--dt``, ``--weight-bits``
set the quantization; ``compile`` adds its per-layer report; ``run --check`` reports the
spike agreement with a float simulation of the NIR graph). ``qblif export-nir MODEL.net
OUT.nir [--dt DT]`` writes a NetX model as NIR.
"""
from __future__ import annotations

import sys

from qblif.core.chip import CHIPS
from qblif.core.constants import ENCODINGS, ENGINES, RUN_MODELS, RUN_RESETS
from qblif.core.data import DATASETS


def register(sub):
    p = sub.add_parser(
        "compile", help="compile a NetX HDF5 model and print its resource report",
        description="Read a NetX HDF5 model (QB-LIF, CUBA or SDNN layers), run every compiler "
                    "pass and print the resource report: neurons, synapses, fan-in/out, message "
                    "bits, weight bits/exponent and Loihi 2 cores per layer, and the Lava CPU "
                    "estimate (OS processes, host memory) of a run. A malformed or unsupported "
                    "file is one line naming layer and key, exit 2.",
        epilog="example: qblif compile netx_models/digits_qblif_mlp.net --graph digits.png")
    p.add_argument("model", help="NetX HDF5 file (docs/netx_format.md)")
    p.add_argument("--encoding", choices=ENCODINGS, default="graded",
                   help="spike encoding between layers: graded n in one event, or binary "
                        "thermometer lanes (spec section 4)")
    p.add_argument("--graph", metavar="FILE", help="save a picture of the layer graph (PNG)")
    p.add_argument("--graphml", metavar="FILE", help="export the IR as GraphML")
    p.add_argument("--chip", choices=tuple(CHIPS), default=None,
                   help="refuse (exit 2, with the reason) a network that does not fit this "
                        "chip (qblif map shows the mapping)")
    add_nir_args(p)
    p.set_defaults(func=cmd_compile)

    r = sub.add_parser(
        "run", help="run a compiled model on test images in Lava (CPU)",
        description="Compile MODEL, stream the first N test images of a dataset through one "
                    "Lava CPU run (each image for T timesteps; one OS process per Lava process) "
                    "and print the report with measured spikes and SynOps per step, and the "
                    "accuracy. Before Lava starts, the OS processes and host memory the run "
                    "needs are estimated; past the limits (docs/hardening.md) the run is refused "
                    "unless --force. Ctrl-C, SIGTERM and SIGHUP stop every worker and remove "
                    "temporary files; a dead worker ends the run with one line.",
        epilog="example: qblif run netx_models/digits_qblif_mlp.net --dataset digits "
               "--samples 20 --check")
    r.add_argument("model", help="NetX HDF5 file (docs/netx_format.md), e.g. one written by "
                                 "'qblif train'")
    src = r.add_mutually_exclusive_group(required=True)
    src.add_argument("--dataset", choices=DATASETS,
                     help="test images to stream (quantized to the file's inputBits)")
    src.add_argument("--input", metavar="FILE.npy",
                     help="run these samples instead of a dataset: ints (S, *input shape) "
                          "held for --steps each, or a stream (S, T_in, *input shape); for "
                          "an input layer with a neuron, its bias mantissas")
    r.add_argument("--samples", type=int, default=10, help="number of test images")
    r.add_argument("--encoding", choices=ENCODINGS, default="graded",
                   help="spike encoding between layers (spec section 4)")
    r.add_argument("--steps", type=int, default=None,
                   help="timesteps T per sample, >= 1 (default: the file's /qblif/timesteps)")
    r.add_argument("--engine", choices=ENGINES, default="lava",
                   help="lava: the compiled Lava process graph; exact: the batched "
                        "exact engine (torch), the same counts much faster")
    r.add_argument("--reset", choices=RUN_RESETS, default="sample",
                   help="per-sample reset, none (continuous), or stock NetX's "
                        "reset_interval/reset_offset schedule (--reset-interval/--reset-offset)")
    r.add_argument("--reset-interval", type=int, default=None,
                   help="with --reset netx: steps between resets (stock NetX's reset_interval)")
    r.add_argument("--reset-offset", type=int, default=0,
                   help="with --reset netx: stock NetX's reset_offset")
    r.add_argument("--check", action="store_true",
                   help="compare every layer's counts with the SLAYER quantized forward "
                        "(needs torch), exit 1 on a mismatch, and a Lava run with the exact "
                        "engine; for a NIR file: report the "
                        "per-layer spike agreement with its float simulation")
    r.add_argument("--force", action="store_true",
                   help="run even past the OS-process / memory limits of the pre-flight estimate")
    r.add_argument("--plot", metavar="FILE.png",
                   help="save a picture of the run: spike raster, burst histogram, activity")
    r.add_argument("--plot-layer", type=int, default=None, metavar="INDEX",
                   help="layer of the raster (default: the first layer with bursts, K > 1)")
    r.add_argument("--plot-samples", type=int, default=None, metavar="N",
                   help="samples in the raster and the activity panel (default 10)")
    r.add_argument("--models", choices=RUN_MODELS, default="fast",
                   help="Lava process models: fast or Lava's stock ones, "
                        "bit-identical (docs/fast_execution.md)")
    r.add_argument("--lanes", type=int, default=None, metavar="L",
                   help="run L samples side by side in one Lava run (same counts, the "
                        "per-process cost paid once per L samples; static frames through "
                        "dense/conv/pool layers of QB-LIF/CUBA neurons; "
                        "docs/fast_execution.md). Default: up to 32 where lanes cover the "
                        "run (noted on stderr), else 1")
    add_nir_args(r)
    r.set_defaults(func=cmd_run)

    e = sub.add_parser("export-nir", help="write a NetX model as a NIR graph (docs/nir.md)")
    e.add_argument("model", help="NetX HDF5 file")
    e.add_argument("out", help="NIR file to write")
    e.add_argument("--dt", type=float, default=None,
                   help="time step of the exported time constants (default 1e-4)")
    e.set_defaults(func=cmd_export_nir)


def add_nir_args(p):
    p.add_argument("--dt", type=float, default=None,
                   help="NIR models: Euler time step (default: the file's, else 1e-4)")
    p.add_argument("--weight-bits", type=int, default=8,
                   help="NIR models: weight mantissa bits, 1..8 (default 8)")
    p.add_argument("--input-scale", type=float, default=None,
                   help="NIR models: the graph receives frame * SCALE (default: the file's, "
                        "else 1)")
    p.add_argument("--input-bits", type=int, default=None,
                   help="NIR models without qblif metadata: bits of the graded input "
                        "(default 8)")
    p.add_argument("--allow-inexact", action="store_true",
                   help="NIR models: give each layer the most precise scale in range, not "
                        "lowered for the 24-bit headroom, and compile a layer whose worst-case "
                        "state overflows 24 bits (refused by default), with a warning")


def nir_options(args):
    return dict(dt=args.dt, weight_bits=args.weight_bits, input_scale=args.input_scale,
                allow_inexact=args.allow_inexact) \
        if str(args.model).lower().endswith(".nir") else None


def compile_from_args(args):
    """``qblif.compile`` of ``args.model`` with every option of the command line (NIR ones
    included); a NIR layer compiled under ``--allow-inexact`` warns on stderr."""
    from qblif import compile as compile_net
    net = compile_net(args.model, encoding=args.encoding, input_bits=args.input_bits,
                      nir_options=nir_options(args))
    for line in net.ir.graph.get("nir_warnings", []):
        print(f"qblif {args.command}: warning: {line} (--allow-inexact)", file=sys.stderr)
    return net


def cmd_export_nir(args):
    from qblif.export.nir import export_nir
    from qblif.ir.from_nir import DEFAULT_DT
    export_nir(args.model, args.out, dt=DEFAULT_DT if args.dt is None else args.dt)
    print(f"NIR: {args.out}")
    return 0


def cmd_compile(args):
    from qblif.viz.report import draw_graph, write_graphml
    with compile_from_args(args) as net:
        if args.chip:
            from qblif.passes.mapping import map_network, require_fit
            require_fit(map_network(net.ir, CHIPS[args.chip]))
        print(net.report())
        if "nir_quant" in net.ir.graph:
            from qblif.nir.quantize import text_report
            print(text_report(net.ir.graph["nir_quant"], net.ir.graph["nir_dt"],
                              net.ir.graph["nir_weight_bits"]))
        if args.graph:
            draw_graph(net.ir, args.graph)
            print(f"graph picture: {args.graph}")
        if args.graphml:
            write_graphml(net.ir, args.graphml)
            print(f"GraphML: {args.graphml}")
    return 0


def cmd_run(args):
    from qblif.core.frames import accuracy, dataset_frames, file_steps
    from qblif.core.errors import CompileError

    if args.samples < 1:
        raise ValueError(f"--samples={args.samples} must be >= 1")
    if args.steps is not None and args.steps < 1:
        raise ValueError(f"--steps={args.steps} must be >= 1 (omit it to use the file's "
                         f"/qblif/timesteps)")
    if args.input:
        return _run_input(args)
    with compile_from_args(args) as net:
        steps = file_steps(net, args.steps)
        if args.check and net.ir.graph.get("stateful"):
            raise CompileError("--check compares with qblif-lava's SLAYER export, which has no "
                               "SDNN layers (compare SDNN nets with stock NetX)", None,
                               "neuron/type")
        from qblif.cli.compare import check_run_plot_args
        check_run_plot_args(args, net)
        frames, labels = dataset_frames(net, args.dataset, args.samples)
        readouts = net.ir.graph.get("nir_readouts", [])   # NIR LI layers: read v
        lanes = _lanes(args, net, frames, models=args.models, engine=args.engine,
                       record_uv=bool(readouts))
        out = net.run(frames, steps, progress=True, record_uv=bool(readouts), force=args.force,
                      models=args.models, engine=args.engine, lanes=lanes)
        _note_lanes(args, lanes)
        acc = accuracy(net, out, labels)
        print(net.report())
        how = "exact engine" if args.engine == "exact" else f"{args.encoding} encoding"
        print(f"accuracy: {acc:.4f} on {len(frames)} {args.dataset} test samples "
              f"({steps} steps each, {how})")
        if args.plot:
            from qblif.cli.compare import save_run_plot
            save_run_plot(net, out, args.plot, args.plot_layer, args.plot_samples)
            print(f"plot: {args.plot}")
        if args.check and "nir_dt" in net.ir.graph:
            return _check_nir(net, frames, out, steps)
        if args.check:
            return _check(args.model, net, frames, out, steps, args.engine)
    return 0


def _lanes(args, net, samples, **mode) -> int:
    """``--lanes``, or by default :meth:`CompiledNetwork.auto_lanes`."""
    return args.lanes if args.lanes is not None else net.auto_lanes(samples, **mode)


def _note_lanes(args, lanes: int) -> None:
    """After a run with default lanes > 1: say so on stderr."""
    if args.lanes is None and lanes > 1:
        print(f"qblif run: ran {lanes} samples side by side (sample lanes: the same counts; "
              "--lanes 1 runs one at a time)", file=sys.stderr)


def _run_input(args):
    """``qblif run MODEL --input FILE.npy``: run the samples of a .npy file; print the
    report and each sample's output counts summed over its steps."""
    from qblif.core.errors import CompileError
    from qblif.core.npyfile import load_npy

    samples = load_npy(args.input)       # header checked first: bounded memory, one line
    with compile_from_args(args) as net:
        stream = samples.ndim == len(net.input_shape) + 2
        nir_check = args.check and "nir_dt" in net.ir.graph
        if args.check and not nir_check:
            raise ValueError("--check with --input compares NIR models with their float "
                             "simulation; for NetX models use --dataset")
        if nir_check and (stream or args.reset != "sample"):
            raise ValueError("--check with --input needs static samples (S, *input shape) "
                             "and --reset sample: the float NIR simulation holds each sample "
                             "for --steps steps from zero state")
        steps = args.steps or (samples.shape[1] if stream else net.ir.graph.get("timesteps"))
        if not steps:
            raise CompileError("the file has no /qblif/timesteps; pass --steps", "qblif",
                               "timesteps")
        last = max(net.ir.nodes)
        neuron = net.ir.nodes[last]["layer"].neuron
        readout = neuron is not None and (neuron.raw.get("implicit")         # never spikes:
                                          or last in net.ir.graph.get("nir_readouts", []))
        record_uv = bool(readout) or bool(nir_check and net.ir.graph["nir_readouts"])
        lanes = _lanes(args, net, samples, models=args.models, stream=stream,
                       reset=args.reset, record_uv=record_uv, engine=args.engine,
                       steps_per_sample=steps, reset_interval=args.reset_interval,
                       reset_offset=args.reset_offset)
        out = net.run(samples, steps, progress=sys.stderr.isatty(), stream=stream,
                      reset=args.reset, reset_interval=args.reset_interval,
                      reset_offset=args.reset_offset, record_uv=record_uv,
                      force=args.force, models=args.models,
                      layers_to_record=[last] if readout and not nir_check else None,
                      lanes=lanes, engine=args.engine)
        _note_lanes(args, lanes)
        print(net.report())
        if readout:
            for s, row in enumerate(out[("v", last)][:, -1].reshape(len(out[last]), -1)):
                print(f"sample {s}: layer {last} (integrator readout) v {row.tolist()}")
        else:
            sums = out[last].reshape(out[last].shape[0], steps, -1).sum(axis=1)
            for s, row in enumerate(sums):
                print(f"sample {s}: layer {last} counts {row.tolist()}")
        if nir_check:
            return _check_nir(net, samples, out, steps)
    return 0


def _check(path, net, frames, out, steps, engine="lava"):
    """Compare every layer's counts with SLAYER's quantized forward (and a Lava run's with the
    exact engine); print the first mismatch."""
    from qblif.verify import exact_counts, first_mismatch, slayer_counts
    name = "Lava" if engine == "lava" else "exact engine"
    want = slayer_counts(path, net.ir, frames, steps)
    bad = first_mismatch(out, want, (name, "SLAYER"))
    if bad is not None:
        print(f"check: MISMATCH (SLAYER vs {name}), first at {bad}")
        return 1
    total = sum(v.size for v in want.values())
    print(f"check: every layer's counts equal SLAYER's quantized forward "
          f"({total} counts in {len(want)} layers)")
    if engine == "lava":
        exact = exact_counts(net.ir, frames, steps)
        bad = first_mismatch(out, exact, ("Lava", "exact engine"))
        if bad is not None:
            print(f"check: MISMATCH (exact engine vs Lava), first at {bad}")
            return 1
        print(f"check: every layer's counts equal the exact engine's "
              f"({sum(v.size for v in exact.values())} counts in {len(exact)} layers)")
    return 0


def _check_nir(net, frames, out, steps):
    """Per-layer spike agreement of the Lava run with the NIR graph's float simulation."""
    from qblif.nir.simulate import check
    for i, a in check(net, frames, steps, lava_out=out).items():
        print(f"check: layer {i} (NIR node {net.ir.graph['nir_nodes'][i]!r}): "
              f"{100 * a:.2f}% agreement with the float NIR simulation")
    return 0
