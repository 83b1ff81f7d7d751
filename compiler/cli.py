"""``qblif compile`` and ``qblif run``.

``qblif compile MODEL.net [--encoding graded|binary] [--graph FILE] [--graphml FILE]``
prints the resource report. ``qblif run MODEL.net --input FILE.npy [--steps T]
[--reset sample|none|netx]`` runs the samples or streams of a .npy file (docs/coverage.md).
``qblif run MODEL.net --dataset NAME --samples N
[--encoding E] [--steps T] [--check]`` streams N test images through one Lava run,
prints accuracy and the report (with measured SynOps); ``--check`` also runs
the SLAYER quantized forward of the same file and demands identical output
counts (exit 1 otherwise). A :class:`compiler.CompileError` is one line on
stderr and exit code 2 (``qblif_lava.cli``).
"""
from __future__ import annotations

import sys

import numpy as np


def register(sub):
    p = sub.add_parser("compile", help="compile a NetX HDF5 model and print its resource report")
    p.add_argument("model", help="NetX HDF5 file (docs/netx_format.md)")
    p.add_argument("--encoding", choices=("graded", "binary"), default="graded")
    p.add_argument("--graph", metavar="FILE", help="save a picture of the layer graph (PNG)")
    p.add_argument("--graphml", metavar="FILE", help="export the IR as GraphML")
    p.set_defaults(func=cmd_compile)

    r = sub.add_parser("run", help="run a compiled model on test images in Lava (CPU)")
    r.add_argument("model")
    src = r.add_mutually_exclusive_group(required=True)
    src.add_argument("--dataset", choices=("digits", "fashion-mnist"))
    src.add_argument("--input", metavar="FILE.npy",
                     help="run these samples instead of a dataset: ints (S, *input shape) "
                          "held for --steps each, or a stream (S, T_in, *input shape); for "
                          "an input layer with a neuron, its bias mantissas")
    r.add_argument("--samples", type=int, default=10, help="number of test images (default 10)")
    r.add_argument("--encoding", choices=("graded", "binary"), default="graded")
    r.add_argument("--steps", type=int, default=None,
                   help="timesteps per sample (default: the file's /qblif/timesteps)")
    r.add_argument("--reset", choices=("sample", "none", "netx"), default="sample",
                   help="per-sample reset (default), none (continuous), or stock NetX's "
                        "reset_interval/reset_offset schedule (--reset-interval/--reset-offset)")
    r.add_argument("--reset-interval", type=int, default=None)
    r.add_argument("--reset-offset", type=int, default=0)
    r.add_argument("--check", action="store_true",
                   help="compare with the SLAYER quantized forward (needs torch)")
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
    if args.input:
        return _run_input(args)
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
        out = net.run(frames, steps, progress=True)
        last = net.output_index
        pred = out[last].reshape(out[last].shape[0], steps, -1).sum(axis=1).argmax(axis=1)
        acc = float((pred == labels[:len(pred)]).mean())
        print(net.report())
        print(f"accuracy: {acc:.4f} on {len(pred)} {args.dataset} test samples "
              f"({steps} steps each, {args.encoding} encoding)")
        if args.check:
            return _check(args.model, net, frames, out, steps)
    return 0


def _run_input(args):
    """``qblif run MODEL --input FILE.npy``: run the samples of a .npy file; print the
    report and each sample's output counts summed over its steps."""
    from compiler import compile as compile_net
    from compiler.errors import CompileError

    try:
        samples = np.load(args.input, allow_pickle=False)
    except ValueError as exc:
        raise ValueError(f"{args.input}: not a .npy array ({exc})") from None
    with compile_net(args.model, encoding=args.encoding) as net:
        stream = samples.ndim == len(net.input_shape) + 2
        steps = args.steps or (samples.shape[1] if stream else net.ir.graph.get("timesteps"))
        if not steps:
            raise CompileError("the file has no /qblif/timesteps; pass --steps", "qblif",
                               "timesteps")
        last = max(net.ir.nodes)
        neuron = net.ir.nodes[last]["layer"].neuron
        readout = neuron is not None and neuron.raw.get("implicit")   # never spikes: show v
        out = net.run(samples, steps, progress=sys.stderr.isatty(), stream=stream,
                      reset=args.reset, reset_interval=args.reset_interval,
                      reset_offset=args.reset_offset, record_uv=bool(readout),
                      layers_to_record=[last] if readout else None)
        print(net.report())
        if readout:
            for s, row in enumerate(out[("v", last)][:, -1].reshape(len(out[last]), -1)):
                print(f"sample {s}: layer {last} (integrator readout) v {row.tolist()}")
            return 0
        sums = out[last].reshape(out[last].shape[0], steps, -1).sum(axis=1)
        for s, row in enumerate(sums):
            print(f"sample {s}: layer {last} counts {row.tolist()}")
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
