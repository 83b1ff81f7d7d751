"""Training speed on CPU (not a test): ms per training sample of the Fashion-MNIST ``conv``
architecture (1x28x28-32c3-p2-64c3-p2-128-10) at T steps, one torch thread, all measured in
one run, round-robin (each round times every network once, so a change of load hits all):

- ``relu x T``: the plain torch ReLU CNN of the same shape on N*T images (the bound: the
  synapses of a spiking network fold time into the batch the same way);
- ``snntorch``: snnTorch 1.0 ``Leaky`` neurons after every layer, the usual Python time loop;
- ``qblif``: ``qblif train``'s step (forward on the T-step window, cross-entropy, backward,
  Adam, threshold clamp), QB-LIF K, quantized (what trains is what runs);
- ``qblif channels-last``: the same with the conv activations in channels-last memory;
- ``cuba``: the same step for CUBA through our blocks (QB-LIF K = 1, reset zero).

A training step = forward + loss + backward + Adam step, on random 4-bit inputs and random
labels, batch ``--batch-size``. Reports the median over rounds and the load average before
and after (this machine is shared: the numbers are pessimistic when it was busy), and the
projected time of one Fashion-MNIST epoch (54,000 images) at one thread.

    python bench/bench_train_speed.py --rounds 8 --out bench/results/train_speed.md
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from qblif.core.fileio import atomic_write_text  # noqa: E402
from qblif.training.loop import clamp_thresholds, make_model  # noqa: E402
from qblif.training.config import TrainConfig  # noqa: E402
from qblif.training.evaluate import sim_steps  # noqa: E402
from qblif.training.models import ReluNet, arch_spec, set_quantized  # noqa: E402

EPOCH_IMAGES = 54000


def snntorch_net(timesteps: int):
    """snnTorch ``Leaky`` network of the conv architecture's shape (a neuron after every
    conv, pool and dense layer), run with a Python loop over T."""
    import snntorch as snn
    layers = []
    c, h = 1, 28
    flat = None
    for layer in arch_spec("fashion-mnist", "conv"):
        if layer[0] == "conv":
            layers.append(torch.nn.Conv2d(c, layer[1], layer[2], padding=layer[3], bias=False))
            c = layer[1]
        elif layer[0] == "pool":
            layers.append(torch.nn.AvgPool2d(layer[1]))
            h //= layer[1]
        elif layer[0] == "flatten":
            layers.append(torch.nn.Flatten())
            flat = c * h * h
            continue
        else:
            layers.append(torch.nn.Linear(flat, layer[1], bias=False))
            flat = layer[1]
        layers.append(snn.Leaky(beta=0.9, init_hidden=True))
    net = torch.nn.Sequential(*layers)

    def forward(x):
        for m in net.modules():
            if isinstance(m, snn.Leaky):
                m.init_leaky()
        return torch.stack([net(x) for _ in range(timesteps)], -1).sum(-1)
    return net, forward


def make_steps(args):
    """{name: zero-argument training step}."""
    gen = torch.Generator().manual_seed(0)
    b, t = args.batch_size, args.timesteps
    x = torch.randint(0, 16, (b, 1, 28, 28), generator=gen).float()
    y = torch.randint(0, 10, (b,), generator=gen)
    steps = {}

    def step_of(model, forward):
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)

        def step():
            loss = F.cross_entropy(forward(), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            clamp_thresholds(model)
        return step

    relu = ReluNet("fashion-mnist", "conv", (1, 28, 28))
    xr = (x / 15).repeat_interleave(t, 0)
    yr = y.repeat_interleave(t)

    def relu_step(opt=torch.optim.Adam(relu.parameters(), lr=1e-3)):
        loss = F.cross_entropy(relu(xr), yr)
        opt.zero_grad()
        loss.backward()
        opt.step()
    steps["relu x T"] = relu_step
    snet, sforward = snntorch_net(t)
    steps["snntorch Leaky"] = step_of(snet, lambda: sforward(x / 15))
    for neuron, last in (("qblif", False), ("qblif", True), ("cuba", False)):
        cfg = TrainConfig(dataset="fashion-mnist", arch="conv", neuron=neuron, cuba_impl="qblif",
                          timesteps=t, max_burst=args.max_burst, train_quantized=True)
        torch.manual_seed(0)
        model = make_model(cfg)
        model.channels_last = last
        set_quantized(model, True)
        s = sim_steps(model, t)
        xs = x.unsqueeze(-1).expand(*x.shape, s).contiguous()
        label = f"qblif K={args.max_burst}" if neuron == "qblif" else "cuba (ours)"
        label += " channels-last" if last else ""
        steps[label] = step_of(model, lambda m=model, xs=xs: m(xs).sum(-1) * 0.25)
    return steps


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--timesteps", type=int, default=4)
    p.add_argument("--max-burst", type=int, default=4)
    p.add_argument("--rounds", type=int, default=6)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", help="markdown result file")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    load0 = os.getloadavg()
    steps = make_steps(args)
    times = {k: [] for k in steps}
    for fn in steps.values():            # warm-up (the C kernel build, oneDNN primitives)
        fn()
    for _ in range(args.rounds):
        for k, fn in steps.items():
            t0 = time.perf_counter()
            fn()
            times[k].append((time.perf_counter() - t0) * 1e3 / args.batch_size)
    load1 = os.getloadavg()
    med = {k: statistics.median(v) for k, v in times.items()}
    bound = med["relu x T"]
    q = med[f"qblif K={args.max_burst}"]
    lines = [f"Fashion-MNIST conv, T = {args.timesteps}, batch {args.batch_size}, "
             f"{args.threads} torch thread(s), {args.rounds} rounds (median); load average {load0[0]:.1f} before, {load1[0]:.1f} after "
             f"(2 shared cores: pessimistic when busy)", "",
             "| network | ms / training sample | x ReLU x T | x QB-LIF | epoch (54,000) at this pace |",
             "|---|---:|---:|---:|---:|"]
    for k, v in med.items():
        lines.append(f"| {k} | {v:.2f} | {v / bound:.2f} | {v / q:.2f} | "
                     f"{v * EPOCH_IMAGES / 1e3 / 60:.1f} min |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        atomic_write_text(args.out, text)


if __name__ == "__main__":
    main()
