"""``qblif compile`` and ``qblif run``.

``qblif compile MODEL.net [--encoding graded|binary] [--graph FILE] [--graphml FILE]``
prints the resource report. ``qblif run MODEL.net --dataset NAME --samples N
[--encoding E] [--steps T] [--engine lava|exact] [--check]`` streams N test images through
one Lava run (or the batched exact engine, ``--engine exact``: the same counts, computed in
torch), prints accuracy and the report (with measured SynOps); ``--check`` also runs
the SLAYER quantized forward of the same file and demands identical output
counts (exit 1 otherwise), and a Lava run is also compared with the exact engine. A :class:`compiler.CompileError` is one line on
stderr and exit code 2 (``qblif_lava.cli``).
"""
from __future__ import annotations

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
    r.add_argument("--dataset", choices=("digits", "fashion-mnist"), required=True)
    r.add_argument("--samples", type=int, default=10, help="number of test images (default 10)")
    r.add_argument("--encoding", choices=("graded", "binary"), default="graded")
    r.add_argument("--steps", type=int, default=None,
                   help="timesteps per sample (default: the file's /qblif/timesteps)")
    r.add_argument("--engine", choices=("lava", "exact"), default="lava",
                   help="lava (default): the compiled Lava process graph; exact: the batched "
                        "exact engine (torch), the same counts much faster")
    r.add_argument("--check", action="store_true",
                   help="compare with the SLAYER quantized forward (needs torch); a Lava run "
                        "is also compared with the exact engine")
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
        out = net.run(frames, steps, progress=True, engine=args.engine)
        last = net.output_index
        pred = out[last].reshape(out[last].shape[0], steps, -1).sum(axis=1).argmax(axis=1)
        acc = float((pred == labels[:len(pred)]).mean())
        print(net.report())
        how = "exact engine" if args.engine == "exact" else f"{args.encoding} encoding"
        print(f"accuracy: {acc:.4f} on {len(pred)} {args.dataset} test samples "
              f"({steps} steps each, {how})")
        if args.check:
            return _check(args.model, net, frames, out, steps, args.engine)
    return 0


def _check(path, net, frames, out, steps, engine="lava"):
    """Compare every layer's counts with SLAYER's quantized forward (and a Lava run's with the
    exact engine); print the first mismatch."""
    from compiler.verify import exact_counts, first_mismatch, slayer_counts
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
