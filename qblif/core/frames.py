"""Test images as a compiled network's input, and its accuracy on them (``qblif run``,
``qblif compare``, the tutorial)."""
from __future__ import annotations

import numpy as np

from qblif.core.errors import CompileError
from qblif.core.data import load_dataset
from qblif.core.encoding import quantize_intensity


def file_steps(net, steps=None) -> int:
    """``steps`` if given, else the file's ``/qblif/timesteps`` (CompileError if it has none)."""
    steps = steps or net.ir.graph.get("timesteps")
    if not steps:
        raise CompileError("the file has no /qblif/timesteps; pass --steps", "qblif",
                           "timesteps")
    return int(steps)


def dataset_frames(net, dataset: str, samples: int) -> tuple:
    """The first ``samples`` test images of ``dataset`` as ``net``'s integer input frames
    ``(S, *input_shape)`` (its input bits), and their labels ``(S,)``."""
    images, labels = load_dataset(dataset, "test", limit=samples)
    frames = quantize_intensity(images, int(net.ir.graph["input_bits"]))
    shape = net.input_shape
    if int(np.prod(frames.shape[1:])) != int(np.prod(shape)):
        raise CompileError(f"dataset {dataset} images {frames.shape[1:]} do not fit the "
                           f"model input {shape}", "qblif", "inputShape")
    return frames.reshape((frames.shape[0],) + shape), labels


def accuracy(net, out: dict, labels) -> float:
    """Share of samples whose output layer's most active neuron (burst counts summed over
    the T steps; for a NIR ``LI`` readout, its voltage ``("v", i)`` summed) is the label."""
    i = net.output_index
    last = out[("v", i)] if i in net.ir.graph.get("nir_readouts", ()) else out[i]
    pred = last.reshape(last.shape[0], last.shape[1], -1).sum(axis=1).argmax(axis=1)
    return float((pred == np.asarray(labels)[:len(pred)]).mean())
