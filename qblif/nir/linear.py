"""The float linear ops of a NIR stage (no neuron): the cross-correlation and each stage
kind's op, shared by the float simulation (:mod:`qblif.nir.simulate`) and the fusion of
linear ops (:mod:`qblif.nir.graph`). Values in NIR's float units."""
from __future__ import annotations

import numpy as np

from qblif.core.numeric import valid_taps


def conv2d(x, w, stride, padding, dilation, groups, out_hw) -> np.ndarray:
    """Float cross-correlation (torch's conv2d): x ``(B, C_in, H, W)``, w ``(C_out, C_in/g,
    kH, kW)`` -> ``(B, C_out, *out_hw)``."""
    b, c_out = x.shape[0], w.shape[0]
    cg, og = w.shape[1], c_out // groups
    y = np.zeros((b, c_out) + tuple(out_hw))
    th = valid_taps(x.shape[2], out_hw[0], w.shape[2], stride[0], padding[0], dilation[0])
    tw = valid_taps(x.shape[3], out_hw[1], w.shape[3], stride[1], padding[1], dilation[1])
    for g in range(groups):
        xg, wg = x[:, g * cg:(g + 1) * cg], w[g * og:(g + 1) * og]
        for a, (oh, ih) in enumerate(th):
            for c, (ow, iw) in enumerate(tw):
                if oh.size and ow.size:
                    patch = xg[:, :, ih][:, :, :, iw]                     # (B, cg, |oh|, |ow|)
                    y[:, g * og:(g + 1) * og, oh[:, None], ow[None, :]] += \
                        np.einsum("oc,bchw->bohw", wg[:, :, a, c], patch)
    return y


def synapse(st, x, bias: bool = True) -> np.ndarray:
    """The op of stage ``st`` on ``x`` ``(B, *in_shape)`` -> ``(B, *shape)`` (float);
    ``bias=False`` leaves out the op's additive term."""
    b = x.shape[0]
    if st.kind == "dense":
        y = x.reshape(b, -1) @ st.weight.T
    elif st.kind == "conv":
        y = conv2d(x, st.weight, st.stride, st.padding, st.dilation, st.groups, st.shape[1:])
    else:
        c = st.shape[0]
        w = np.broadcast_to(st.weight, (c, 1) + st.weight.shape)
        y = conv2d(x, w, st.stride, st.padding, (1, 1), c, st.shape[1:])
    if bias and st.bias is not None:
        y = y + st.bias
    return y.reshape((b,) + tuple(st.shape))
