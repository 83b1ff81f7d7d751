"""Shape inference and checks: fill ``Layer.in_shape``, check weights and shapes agree.

Conventions (file order): dense weight ``(out, in)``; conv ``(C_out, C_in/groups,
kH, kW)``; pool ``(kH, kW)`` applied per channel; 3-D shapes ``(C, H, W)``.
"""
from __future__ import annotations

import numpy as np

from qblif.core.errors import CompileError
from qblif.core.numeric import conv_out
from qblif.ir import layers
from qblif.passes.declare import declare


def _input_shape(g, first):
    if first.kind == "input":
        return first.shape
    if "input_shape" in g.graph:
        return g.graph["input_shape"]
    if first.kind == "dense" and first.weight is not None and first.weight.ndim == 2:
        return (first.weight.shape[1],)
    raise CompileError("the input shape is unknown: add an input layer or /qblif/inputShape",
                       first.index, "shape")


@declare(reads=("graph.input_shape", "layer.dilation", "layer.groups", "layer.kernel",
               "layer.kind", "layer.padding", "layer.shape", "layer.stride", "layer.weight",
               "layer.weight_imag", "layer.weight_rec"),
         writes=("layer.in_shape", "layer.shape", "layer.weight", "graph.input_shape"),
         requires=())
def infer_shapes(g):
    """Propagate shapes layer by layer; raise on any inconsistency."""
    lys = layers(g)
    cur = tuple(_input_shape(g, lys[0]))
    if "input_shape" in g.graph and lys[0].kind == "input" and tuple(g.graph["input_shape"]) != cur:
        raise CompileError(f"/qblif/inputShape {g.graph['input_shape']} != input layer shape {cur}",
                           0, "shape")
    if len(cur) not in (1, 3) or min(cur) <= 0:
        raise CompileError(f"invalid input shape {cur}", 0, "shape")
    g.graph["input_shape"] = cur
    for ly in lys:
        i = ly.index
        if ly.kind == "input":
            continue
        ly.in_shape = cur
        w = ly.weight
        if ly.kind == "average":   # groups of consecutive (file-order) neurons
            n_out, n_in = int(np.prod(ly.shape)), int(np.prod(cur))
            if n_in % n_out:
                raise CompileError(f"{n_in} inputs do not split into {n_out} equal groups",
                                   i, "shape")
            ly.shape = (n_out,)
            cur = ly.shape
            continue
        if ly.kind == "flatten":
            flat = (int(np.prod(cur)),)
            if ly.shape and int(np.prod(ly.shape)) != flat[0]:
                raise CompileError(f"shape {ly.shape} does not flatten {cur}", i, "shape")
            ly.shape = flat
        elif ly.kind == "dense":
            n_in = int(np.prod(cur))
            if len(cur) != 1 and (i == 0 or g.nodes[i - 1]["layer"].kind != "flatten"):
                raise CompileError(f"a dense layer needs a 1-D input (found {cur}); add a "
                                   "flatten layer", i, "type")
            n_out = int(np.prod(ly.shape))
            if w.ndim == 1 and w.size == n_out * n_in:
                w = w.reshape(n_out, n_in)
            if w.ndim != 2 or w.shape != (n_out, n_in):
                raise CompileError(f"shape {w.shape} != (out={n_out}, in={n_in})", i, "weight")
            ly.weight, ly.shape = w, (n_out,)
            if ly.weight_imag is not None:
                wi = np.asarray(ly.weight_imag)
                if wi.size != w.size:
                    raise CompileError(f"shape {wi.shape} != the real part's {w.shape}", i,
                                       "weight/imag")
                ly.weight_imag = wi.reshape(w.shape)
            if ly.weight_rec is not None:
                wr = np.asarray(ly.weight_rec)
                if wr.size != n_out * n_out:
                    raise CompileError(f"shape {wr.shape} != (out={n_out}, out={n_out})", i,
                                       "weight_rec")
                ly.weight_rec = wr.reshape(n_out, n_out)
        elif ly.kind in ("conv", "pool"):
            if len(cur) != 3:
                raise CompileError(f"a {ly.kind} layer needs a (C, H, W) input, found {cur}",
                                   i, "type")
            c_in = cur[0]
            if ly.kind == "conv":
                if w.ndim == 5 and w.shape[-1] == 1:
                    w = w[..., 0]
                if w.ndim != 4:
                    raise CompileError(f"expected (C_out, C_in/groups, kH, kW), found {w.shape}",
                                       i, "weight")
                c_out = w.shape[0]
                if c_in % ly.groups or c_out % ly.groups:
                    raise CompileError(f"groups={ly.groups} does not divide channels "
                                       f"{c_in} -> {c_out}", i, "groups")
                if w.shape[1] != c_in // ly.groups or tuple(w.shape[2:]) != tuple(ly.kernel):
                    raise CompileError(f"shape {w.shape} != ({c_out}, {c_in // ly.groups}, "
                                       f"{ly.kernel[0]}, {ly.kernel[1]})", i, "weight")
            else:
                w = w.reshape(-1)
                if w.size == 1:
                    w = np.full(ly.kernel, w[0])
                if w.size != ly.kernel[0] * ly.kernel[1]:
                    raise CompileError(f"{w.size} values for a {ly.kernel} pooling kernel",
                                       i, "weight")
                w = w.reshape(ly.kernel)
                c_out = c_in
            out = (c_out,) + tuple(conv_out(cur[1 + a], ly.kernel[a], ly.stride[a],
                                            ly.padding[a], ly.dilation[a]) for a in (0, 1))
            if min(out) <= 0:
                raise CompileError(f"kernel {ly.kernel} does not fit input {cur}", i, "kernelSize")
            if tuple(ly.shape) != out:
                raise CompileError(f"shape {ly.shape} != inferred {out}", i, "shape")
            ly.weight = w
        cur = tuple(ly.shape)
    return g
