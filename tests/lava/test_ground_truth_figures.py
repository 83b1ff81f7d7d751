"""Every figure docs/coverage.md quotes about lava-dl's shipped ground truths, recomputed file by
file: the table between the ``ground-truth-figures`` markers is parsed and each row's steps,
differing steps and differing values must be what our run gives. Spiking networks run through
the exact engine (equal to the Lava graph, tests/exact), the sigma-delta ones through Lava with
``run(record=("sigma", ...))`` (their hardware ground truths are sigma states).

``python tests/lava/test_ground_truth_figures.py`` prints the rows as the doc's table."""
from __future__ import annotations

import os
import pathlib
import re
import sysconfig

import numpy as np
import pytest

import qblif

NETX = pathlib.Path(sysconfig.get_paths()["purelib"]) / "tests/lava/lib/dl/netx"
GTS = NETX / "gts"
DOC = pathlib.Path(__file__).resolve().parents[2] / "docs" / "coverage.md"
MARK = "<!-- ground-truth-figures -->"
pytestmark = pytest.mark.skipif(not (NETX / "tiny.net").exists(),
                                reason="lava-dl's test networks are not installed")

PILOTNET_LIF = {0: "input", 1: "conv-0", 2: "conv-1", 3: "conv-2", 4: "conv-3", 5: "conv-4",
                7: "fc-0", 8: "fc-1", 9: "fc-2", 10: "fc-3"}


def doc_rows() -> dict:
    """``{file: (steps, differing steps, differing values, values, of them v = 128 after a
    spike or None)}`` from the doc's table (first column the file, then those five)."""
    text = DOC.read_text().split(MARK)
    assert len(text) == 3, f"{DOC} needs the table between two {MARK} markers"
    rows = {}
    for line in text[1].splitlines():
        cells = [c.strip().strip("`") for c in line.strip().strip("|").split("|")]
        if len(cells) < 7 or not cells[2].replace(",", "").isdigit():
            continue
        nums = [None if c in ("", "-") else int(c.replace(",", "")) for c in cells[2:7]]
        rows[cells[0]] = tuple(nums)
    return rows


def _figures(ours: np.ndarray, gt: np.ndarray, spiked=None) -> tuple:
    """ours, gt: ``(T, ...)``; the row's five figures."""
    diff = (ours != gt).reshape(len(gt), -1)
    at128 = None if spiked is None else int((diff & (spiked.reshape(diff.shape) > 0) &
                                             (gt.reshape(diff.shape) == 128)).sum())
    return (len(gt), int(diff.any(1).sum()), int(diff.sum()), int(gt.size), at128)


def _time_first_file_order(gt: np.ndarray, shape) -> np.ndarray:
    """A ground truth ``(*Lava shape, T)`` (W, H, C) -> ``(T, *file shape)``."""
    gt = np.moveaxis(gt, -1, 0).reshape((gt.shape[-1],) + tuple(shape)[::-1])
    return gt.transpose((0,) + tuple(range(gt.ndim - 1, 0, -1)))


def pilotnet_lif() -> dict:
    """The image as the input neuron's bias, stock's reset_interval=17, 25 steps."""
    from qblif.exact import ExactEngine
    d = GTS / "pilotnet_lif"
    with qblif.compile(d / "network.net") as net:
        image = np.load(d / "image.npy").astype(int).transpose(2, 1, 0)[None]
        tl = ExactEngine(net.ir).run(image, 25, record_uv=True, reset="netx",
                                     reset_interval=17, timeline=True)
        shapes = {i: net.ir.nodes[i]["layer"].shape for i in PILOTNET_LIF}
    rows = {}
    for i, name in PILOTNET_LIF.items():
        for suffix, key in (("", i), ("-s", i), ("-u", ("u", i)), ("-v", ("v", i))):
            f = d / f"{name}{suffix}.npy"
            if f.exists():
                gt = _time_first_file_order(np.load(f), shapes[i])
                n = len(gt)
                spiked = tl[i][:n] if suffix == "-v" else None
                rows[f"pilotnet_lif/{f.name}"] = _figures(tl[key][:n], gt, spiked)
    return rows


def ntidigits(steps: int = 300) -> dict:
    """A spike stream, no reset; the output layer (4) against ``output.npy`` as it is and
    one step later (``gt[:, t + 1]`` against ours at t)."""
    from qblif.exact import ExactEngine
    d = GTS / "ntidigits"
    inp = np.load(d / "input.npy")[:, :steps]
    gt = np.load(d / "output.npy")[:, :steps].T                    # (T, 242)
    with qblif.compile(d / "ntidigits.net") as net:
        stream = inp.T.reshape(1, steps, 1, 1, 64).astype(int)
        out = ExactEngine(net.ir).run(stream, steps, stream=True, reset="none",
                                      timeline=True)[4][:steps]
    return {"ntidigits/output.npy": _figures(out, gt),
            "ntidigits/output.npy, one step later": _figures(out[:-1], gt[1:])}


def tinynet() -> dict:
    """The input bias drives the input neuron; the output layer on steps 3..17 against the
    ground truth's steps 2..16 (as stock's test), and unshifted."""
    from qblif.exact import ExactEngine
    d = GTS / "tinynet"
    with qblif.compile(NETX / "tiny.net") as net:
        bias = np.load(d / "input_bias.npy").astype(int).transpose(2, 1, 0)
        out = ExactEngine(net.ir).run(bias[None], 17)[2][0]          # (17, 36, 1, 1)
    gt = np.moveaxis(np.load(d / "output.npy")[0], -1, 0)            # (16, 36, 1, 1)
    return {"tinynet/output.npy, first step dropped": _figures(out[:15], gt[1:]),
            "tinynet/output.npy": _figures(out[:16], gt)}


def pilotnet_sdnn(steps: int = 20) -> dict:
    """``input.npy`` held into the Delta encoder (lava-dl's hardware tests feed its output
    ``act0.npy`` into conv 1: the same messages on the same steps); the Sigma output over 9
    steps and the sigma state of convs 1 and 2 over 20."""
    d = GTS / "pilotnet_sdnn"
    inp = np.load(d / "input.npy")[..., 0].transpose(2, 1, 0)
    with qblif.compile(d / "network.net") as net:
        tl = net.run(inp[None], steps, layers_to_record=[1, 2, 9], timeline=True,
                     record=("sigma", "act", "residue"))
        shapes = {i: net.ir.nodes[i]["layer"].shape for i in (1, 2)}
        from qblif.passes.resources import RUNTIME_PROCESSES     # one StateRecorder a layer
        assert net.last_run["host_estimate"]["processes"] == \
            net.last_run["processes"] + RUNTIME_PROCESSES
    rows = {"pilotnet_sdnn/output.npy": _figures(tl[9][:9, 0], np.load(d / "output.npy")[0])}
    for i in (1, 2):
        gt = _time_first_file_order(np.load(d / f"sigma{i}.npy"), shapes[i])
        rows[f"pilotnet_sdnn/sigma{i}.npy"] = _figures(tl[("sigma", i)][:len(gt)], gt)
        act, res = tl[("act", i)], tl[("residue", i)]
        assert act.shape == res.shape == tl[("sigma", i)].shape
        assert act.min() >= 0 and act.any()                          # relu
    return rows


def square_network(steps: int = 20) -> dict:
    """``square_network.net`` fed ``input.npy[:33, :33]`` (lava-dl's test: ``act0[:33, :33]``
    into conv 1); the sigma state of its four convs over 20 steps."""
    d = GTS / "pilotnet_sdnn"
    inp = np.load(d / "input.npy")[:33, :33, :, 0].transpose(2, 1, 0)
    with qblif.compile(d / "square_network.net") as net:
        tl = net.run(inp[None], steps, layers_to_record=[1, 2, 3, 4], timeline=True,
                     record=("sigma",))
        shapes = {i: net.ir.nodes[i]["layer"].shape for i in (1, 2, 3, 4)}
    rows = {}
    for i in (1, 2, 3, 4):
        gt = _time_first_file_order(np.load(d / f"sigma{i}_square.npy"), shapes[i])
        rows[f"pilotnet_sdnn/sigma{i}_square.npy"] = _figures(tl[("sigma", i)][:len(gt)], gt)
    return rows


NETWORKS = {"pilotnet_lif": pilotnet_lif, "ntidigits": ntidigits, "tinynet": tinynet,
            "pilotnet_sdnn": pilotnet_sdnn, "square_network": square_network}


@pytest.mark.parametrize("name", NETWORKS)
def test_the_docs_ground_truth_figures(name):
    got = NETWORKS[name]()
    quoted = doc_rows()
    assert got, name
    for key, figures in got.items():
        assert key in quoted, f"docs/coverage.md quotes no figures for {key}"
        assert quoted[key] == figures, f"{key}: the doc says {quoted[key]}, the run gives {figures}"
    if name == "pilotnet_sdnn":     # lava-dl's Loihi sigma ground truths: every value equal
        assert sum(got[f"pilotnet_sdnn/sigma{i}.npy"][3] for i in (1, 2)) == 497280
        assert all(got[f"pilotnet_sdnn/sigma{i}.npy"][2] == 0 for i in (1, 2))


def test_sdnn_state_recording_is_lava_only():
    with pytest.raises(ValueError, match="engine='lava'"):
        qblif.RunOptions(engine="exact", record=("sigma",))
    with pytest.raises(ValueError, match="SDNN states"):
        qblif.RunOptions(record=("u",))


def test_every_quoted_file_is_computed():
    names = {k.split("/")[0] for k in doc_rows()}
    assert names == {"pilotnet_lif", "ntidigits", "tinynet", "pilotnet_sdnn"}


def _print_table():
    print("| ground truth file | compared with | steps | differing steps | differing values "
          "| values | of them v = 128 where ours spiked |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for name, f in NETWORKS.items():
        for key, (n, ds, dv, tot, at128) in f().items():
            print(f"| `{key}` | | {n} | {ds} | {dv:,} | {tot:,} | "
                  f"{'-' if at128 is None else f'{at128:,}'} |")


if __name__ == "__main__":
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    _print_table()
