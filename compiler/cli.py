"""``qblif compile`` and ``qblif run``.

``qblif compile MODEL.net [--encoding graded|binary] [--graph FILE] [--graphml FILE]``
prints the resource report. ``qblif run MODEL.net --dataset NAME --samples N
[--encoding E] [--steps T] [--check]`` streams N test images through one Lava run,
prints accuracy and the report (with measured SynOps); ``--check`` also runs
the SLAYER quantized forward of the same file and demands identical output
counts (exit 1 otherwise). A :class:`compiler.CompileError` is one line on
stderr and exit code 2 (``qblif_lava.cli``).
"""
from __future__ import annotations

import numpy as np


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
    p.add_argument("--encoding", choices=("graded", "binary"), default="graded",
                   help="spike encoding between layers: graded n in one event, or binary "
                        "thermometer lanes (spec section 4)")
    p.add_argument("--graph", metavar="FILE", help="save a picture of the layer graph (PNG)")
    p.add_argument("--graphml", metavar="FILE", help="export the IR as GraphML")
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
    r.add_argument("--dataset", choices=("digits", "fashion-mnist"), required=True,
                   help="test images to stream (quantized to the file's inputBits)")
    r.add_argument("--samples", type=int, default=10, help="number of test images")
    r.add_argument("--encoding", choices=("graded", "binary"), default="graded",
                   help="spike encoding between layers (spec section 4)")
    r.add_argument("--steps", type=int, default=None,
                   help="timesteps T per sample, >= 1 (default: the file's /qblif/timesteps)")
    r.add_argument("--check", action="store_true",
                   help="compare every layer's counts with the SLAYER quantized forward "
                        "(needs torch); exit 1 on a mismatch")
    r.add_argument("--force", action="store_true",
                   help="run even past the OS-process / memory limits of the pre-flight estimate")
    r.set_defaults(func=cmd_run)


def cmd_compile(args):
    from compiler import compile as compile_net
    from compiler.report import draw_graph, write_graphml
    with compile_net(args.model, encoding=args.encoding) as net:
        print(net.report())
        if args.graph:
            draw_graph(net.ir, args.graph)
            print(f"graph picture: {args.graph}")
        if args.graphml:
            write_graphml(net.ir, args.graphml)
            print(f"GraphML: {args.graphml}")
    return 0


def cmd_run(args):
    from compiler import compile as compile_net
    from compiler.errors import CompileError
    from qblif_lava.data import load_dataset
    from qblif_lava.encoding import quantize_intensity

    if args.samples < 1:
        raise ValueError(f"--samples={args.samples} must be >= 1")
    if args.steps is not None and args.steps < 1:
        raise ValueError(f"--steps={args.steps} must be >= 1 (omit it to use the file's "
                         f"/qblif/timesteps)")
    with compile_net(args.model, encoding=args.encoding) as net:
        steps = args.steps or net.ir.graph.get("timesteps")
        if not steps:
            raise CompileError("the file has no /qblif/timesteps; pass --steps", "qblif",
                               "timesteps")
        if args.check and net.ir.graph.get("stateful"):
            raise CompileError("--check compares with qblif-lava's SLAYER export, which has no "
                               "SDNN layers (compare SDNN nets with stock NetX)", None,
                               "neuron/type")
        images, labels = load_dataset(args.dataset, "test", limit=args.samples)
        frames = quantize_intensity(images, int(net.ir.graph["input_bits"]))
        shape = net.input_shape
        if int(np.prod(frames.shape[1:])) != int(np.prod(shape)):
            raise CompileError(f"dataset {args.dataset} images {frames.shape[1:]} do not fit the "
                               f"model input {shape}", "qblif", "inputShape")
        frames = frames.reshape((frames.shape[0],) + shape)
        out = net.run(frames, steps, progress=True, force=args.force)
        last = net.output_index
        pred = out[last].reshape(out[last].shape[0], steps, -1).sum(axis=1).argmax(axis=1)
        acc = float((pred == labels[:len(pred)]).mean())
        print(net.report())
        print(f"accuracy: {acc:.4f} on {len(pred)} {args.dataset} test samples "
              f"({steps} steps each, {args.encoding} encoding)")
        if args.check:
            return _check(args.model, net, frames, out, steps)
    return 0


def _check(path, net, frames, out, steps):
    """Compare every layer's counts with SLAYER's quantized forward; print the first mismatch."""
    from compiler.verify import first_mismatch, slayer_counts
    want = slayer_counts(path, net.ir, frames, steps)
    bad = first_mismatch(out, want)
    if bad is not None:
        print(f"check: MISMATCH (SLAYER vs Lava), first at {bad}")
        return 1
    total = sum(v.size for v in want.values())
    print(f"check: every layer's counts equal SLAYER's quantized forward "
          f"({total} counts in {len(want)} layers)")
    return 0
