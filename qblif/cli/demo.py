"""``qblif demo``: the main job, end to end on real data.

Train a small QB-LIF network on scikit-learn's digits with SLAYER, export it to
NetX HDF5, compile it to a Lava process graph, stream test samples through one
CPU Lava run, and compare every layer's spike counts with SLAYER's quantized
forward. Prints SLAYER accuracy, Lava accuracy and whether every spike matched;
exits 1 on any mismatch.
"""
from __future__ import annotations

import argparse
import os
import sys
import time


def register(sub):
    p = sub.add_parser("demo", help="train on digits, export, compile, run in Lava, compare with SLAYER",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="out/demo/digits_qblif_mlp.net", help="where to write the trained model")
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--samples", type=int, default=None,
                   help="test samples streamed through Lava (default: the whole digits test set)")
    p.add_argument("--binary-samples", type=int, default=20,
                   help="of those, samples also run with the binary-lane encoding (0: skip)")
    p.add_argument("--max-burst", type=int, default=4)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=run)


def _train(args) -> float:
    from qblif.cli import train as train_cli
    parser = argparse.ArgumentParser(prog="qblif")
    train_cli.register(parser.add_subparsers())
    targs = parser.parse_args([
        "train", "--dataset", "digits", "--neuron", "qblif", "--arch", "mlp", "--timesteps", "4",
        "--max-burst", str(args.max_burst), "--epochs", str(args.epochs), "--seed", str(args.seed),
        "--out", args.out])
    return train_cli.run(targs)


def run(args) -> int:
    import numpy as np

    from qblif import compile as compile_network
    from qblif.verify import first_mismatch, slayer_counts
    from qblif.core.data import load_dataset
    from qblif.core.encoding import quantize_intensity

    if (args.samples is not None and args.samples < 1) or args.binary_samples < 0:
        raise ValueError("--samples must be >= 1 and --binary-samples >= 0")
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    print(f"[1/4] training a QB-LIF MLP (K={args.max_burst}) on digits with SLAYER ...", flush=True)
    _train(args)
    print(f"[2/4] compiling {args.out} to a Lava process graph", flush=True)
    t0 = time.perf_counter()
    with compile_network(args.out, encoding="graded") as net:
        compile_s = time.perf_counter() - t0
        steps = int(net.ir.graph["timesteps"])
        images, labels = load_dataset("digits", "test", limit=args.samples)
        frames = quantize_intensity(images, int(net.ir.graph["input_bits"]))
        frames = frames.reshape((len(frames),) + net.input_shape)
        print(f"[3/4] streaming {len(frames)} test samples x {steps} steps through one Lava run "
              f"(fixed_pt, graded bursts) ...", flush=True)
        lava = net.run(frames, steps)
        stats = net.last_run
        print(net.report())
        print("[4/4] comparing every layer's spike counts with SLAYER's quantized forward", flush=True)
        slayer = slayer_counts(args.out, net.ir, frames, steps)
        out_idx = net.output_index
        acc_lava = float((lava[out_idx].sum(1).argmax(1) == labels).mean())
        acc_slayer = float((slayer[out_idx].sum(1).argmax(1) == labels).mean())
        mismatch = first_mismatch(lava, slayer)
        n_counts = sum(v.size for v in slayer.values())
        n_spikes = int(sum(v.sum() for v in slayer.values()))
    same_binary = None
    if args.binary_samples:
        k = min(args.binary_samples, len(frames))
        with compile_network(args.out, encoding="binary") as bnet:
            blava = bnet.run(frames[:k], steps)
        same_binary = all(np.array_equal(blava[i], lava[i][:k]) for i in lava)

    print()
    print(f"model                 {args.out}")
    print(f"compile time          {compile_s:.2f} s")
    print(f"Lava run              {stats['lava_steps']} steps, {stats['steps_per_s']:.0f} steps/s "
          f"({stats['processes']} Lava processes)")
    print(f"SLAYER accuracy       {acc_slayer * 100:.2f}% on {len(labels)} digits test samples (quantized)")
    print(f"Lava accuracy         {acc_lava * 100:.2f}% on the same samples")
    if mismatch is None:
        print(f"every spike matched   YES: {n_counts} counts ({n_spikes} unit spikes) in all layers and steps")
    else:
        print(f"every spike matched   NO: first mismatch at {mismatch}")
    if same_binary is not None:
        print(f"binary lanes          {'identical to graded' if same_binary else 'DIFFER from graded'} "
              f"on {min(args.binary_samples, len(frames))} samples")
    ok = mismatch is None and same_binary is not False and acc_lava == acc_slayer
    return 0 if ok else 1


if __name__ == "__main__":  # pragma: no cover
    from qblif.cli.main import main
    sys.exit(main(["demo", *sys.argv[1:]]))
