"""QB-LIF layer blocks for lava-dl SLAYER (the mixin pattern of ``slayer/block/cuba.py``).

Signatures are lava-dl's (``slayer.block.base``); ``neuron_params`` is the keyword dict of
:class:`qblif.training.slayer.neuron.Neuron` (``threshold``, ``current_decay``, ``voltage_decay``,
``max_burst``, ``reset_mode``, ``per_channel``, ``tau_grad``, ``scale_grad``, ``requires_grad``,
``persistent_state``, ``shared_param``, ``learn_threshold``, ``quantized``, ``norm``,
``dropout``). Weights are quantized as lava-dl CUBA (``neuron.quantize_8bit``: even integers
``w_int`` in [-256, 254], weight ``w_int / 64``). Blocks output the burst counts ``n`` and,
with ``delay_shift=True`` (default), delay them by one step as Lava's Dense/Conv synapse does.

In the quantized mode Dense and Conv compute the synaptic sum in float64, so the weight-unit
input ``a`` is exact. ``export_hdf5`` is lava-dl's, with the QB-LIF neuron group of spec
section 5 (see ``docs/netx_format.md``).

``delay=True`` (Dense, Conv, Recurrent) adds learnable axonal delays on the block's output,
lava-dl's semantics in plain torch (:class:`qblif.training.slayer.delay.Delay`, one delay per
output neuron or conv channel, exported as lava-dl's ``delay`` dataset). :class:`Recurrent`
is lava-dl's ``dense_rec`` layer (``s[t] = f(W x[t] + R s[t-1])``) with a QB-LIF neuron; see
``docs/training_features.md``.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from lava.lib.dl.slayer.block import base
from lava.lib.dl.slayer.synapse import layer as synapse

from qblif.training.slayer.delay import MAX_DELAY, Delay
from qblif.training.slayer.neuron import Neuron

__all__ = ['AbstractQBLIF', 'Input', 'Flatten', 'Average', 'Dense', 'Conv', 'Pool',
           'Recurrent']


def step_delay(module, x):
    """One step of delay along time (last axis), as lava-dl's ``block.base.step_delay``:
    ``y[..., t] = x[..., t-1]``, ``y[..., 0] = 0`` (or, with a persistent neuron state, the
    previous call's last step, detached). Plain torch, the same values and gradients as
    lava-dl's shift; lava-dl's version JIT-compiles a CUDA kernel for GPU tensors, whose default
    target (sm_80) cannot run on newer GPUs, so QB-LIF blocks need no JIT on any device."""
    if getattr(module, 'delay_buffer', None) is not None \
            and module.delay_buffer.shape[0] != x.shape[0]:          # batch mismatch
        module.delay_buffer = None
    persistent = getattr(getattr(module, 'neuron', None), 'persistent_state', False) is True
    first = torch.zeros_like(x[..., :1])
    if persistent:
        if getattr(module, 'delay_buffer', None) is not None:
            first = module.delay_buffer.unsqueeze(-1).to(x.dtype)
        module.delay_buffer = x[..., -1].detach()
    return torch.cat([first, x[..., :-1]], dim=-1)


def _synapse64(syn, x):
    """A lava-dl Dense/Conv synapse applied in float64 (same weights, same pre-hook)."""
    weight = syn.weight if syn._pre_hook_fx is None else syn._pre_hook_fx(syn.weight)
    weight = weight.to(torch.float64)
    bias = None if syn.bias is None else syn.bias.to(torch.float64)
    x = x.to(torch.float64)
    if x.dim() == 3:
        shape = x.shape
        return F.conv3d(x.reshape(shape[0], -1, 1, 1, shape[-1]), weight, bias, syn.stride,
                        syn.padding, syn.dilation, syn.groups).reshape(shape[0], -1, shape[-1])
    return F.conv3d(x, weight, bias, syn.stride, syn.padding, syn.dilation, syn.groups)


#: float32 sums of even weight mantissas (w_int / 64) times integer counts are exact while
#: every partial sum |a| (weight units) stays below 2^25 (a / 2 below float32's 2^24)
F32_EXACT_BOUND = 2 ** 25


def _synapse_weight(syn):
    """The synapse's weight after its pre-hook (the quantized one), float32."""
    return syn.weight if syn._pre_hook_fx is None else syn._pre_hook_fx(syn.weight)


def _f32_exact(weight: torch.Tensor, x: torch.Tensor, w_scale: int) -> bool:
    """Whether the float32 synaptic sum of ``x`` (integer counts) is exact: max|x| times the
    largest sum of |w_int| over one output's fan-in below :data:`F32_EXACT_BOUND`."""
    fan = weight.detach().abs().reshape(weight.shape[0], -1).sum(1).max() * w_scale
    lo, hi = torch.aminmax(x.detach())
    return float(fan) * max(float(hi), -float(lo)) < F32_EXACT_BOUND


def folded_synapse(syn, x: torch.Tensor, exact: bool, w_scale: int = 64) -> torch.Tensor:
    """A lava-dl Dense/Conv/Pool synapse applied to time folded into the batch:
    ``x`` ``(B, F)`` or ``(B, C, H, W)`` (B = N*T) -> ``(B, out)`` / ``(B, C', H', W')``, with 2-D
    kernels instead of lava-dl's 3-D ones over ``(..., T)``. ``exact``: the quantized mode's
    exact sum, in float32 when :func:`_f32_exact` proves it exact, else in float64."""
    w = _synapse_weight(syn)
    pool = isinstance(syn, synapse.Pool)
    dtype = x.dtype
    if exact and not _f32_exact(w, x, w_scale):
        w, x = w.to(torch.float64), x.to(torch.float64)
    else:
        w = w.to(x.dtype)
    if isinstance(syn, synapse.Dense):
        y = F.linear(x.reshape(len(x), -1), w.reshape(w.shape[0], -1))
    elif pool and tuple(syn.dilation[:2]) == (1, 1) and bool((w == w.flatten()[0]).all()):
        # a uniform kernel: w times the window sums (exact: integer sums, one dyadic product)
        y = F.avg_pool2d(x, syn.kernel_size[:2], syn.stride[:2], syn.padding[:2],
                         divisor_override=1) * w.flatten()[0]
    elif pool:
        b, c = x.shape[:2]
        y = F.conv2d(x.reshape(b * c, 1, *x.shape[2:]), w[..., 0], None, syn.stride[:2],
                     syn.padding[:2], syn.dilation[:2])
        y = y.reshape(b, c, *y.shape[2:])
    else:
        y = F.conv2d(x, w[..., 0], None, syn.stride[:2], syn.padding[:2], syn.dilation[:2],
                     syn.groups)
    if syn.bias is not None:
        y = y + syn.bias.to(y.dtype).reshape((1, -1) + (1,) * (y.dim() - 2))
    return y.to(dtype)


def windowable(block) -> bool:
    """Whether ``block`` may run on the T-step window with time folded into the batch
    (:meth:`AbstractQBLIF.forward_folded`): a feed-forward Dense/Conv/Pool block without axonal
    delays, persistent state, spike-rate logging or weight norm, or a Flatten."""
    if isinstance(block, Flatten):
        return True
    if not isinstance(block, (Dense, Conv, Pool)):
        return False
    return (block.delay is None and block.delay_shift is True and not block.count_log
            and not block.neuron.persistent_state and not block.synapse.weight_norm_enabled)


class AbstractQBLIF(torch.nn.Module):
    """Mixin: builds ``self.neuron = Neuron(**neuron_params)`` (never instantiate alone)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.neuron_params is not None:
            params = dict(self.neuron_params)
            sp = self.synapse_params or {}
            channels = sp.get('out_neurons', sp.get('out_features'))
            if params.get('per_channel') and channels is not None:
                params.setdefault('num_channels', channels)
            self.neuron = Neuron(**params)
        delay = kwargs.get('delay', False)
        channels = (self.synapse_params or {}).get(
            'out_neurons', (self.synapse_params or {}).get('out_features'))
        self.delay = Delay(channels, max_delay=MAX_DELAY) if delay is True else None
        del self.neuron_params

    def _build_synapse(self, synapse_cls, kwargs):
        """``self.synapse = synapse_cls(**synapse_params)``, weights quantized as lava-dl CUBA
        (8-bit even mantissas over 64) unless the caller gave its own ``pre_hook_fx``."""
        self.synapse = synapse_cls(**self.synapse_params)
        if kwargs.get('pre_hook_fx') is None:
            self.synapse.pre_hook_fx = self.neuron.quantize_8bit
        del self.synapse_params

    def _synapse_forward(self, x, syn=None):
        syn = self.synapse if syn is None else syn
        exact = (self.neuron.quantized and not syn.weight_norm_enabled
                 and isinstance(syn, (synapse.Dense, synapse.Conv)))
        return _synapse64(syn, x) if exact else syn(x)

    def _output(self, x):
        """The block's output counts ``x`` after its one-step delay and axonal delays (the
        delay is on the output spikes, as lava-dl), with the spike rate if ``count_log``."""
        if self.delay_shift is True:
            x = step_delay(self, x)
        if self.delay is not None:
            x = self.delay(x)
        if self.count_log is True:
            return x, torch.mean(x > 0)
        return x

    def forward(self, x):
        """``NCT`` or ``NCHWT`` input (graded counts); returns counts, delayed by one step."""
        dtype = x.dtype
        if getattr(self, 'mask', None) is not None:
            self.synapse.weight.data *= self.mask
        z = self._synapse_forward(x)
        x = self.neuron(z).to(dtype)
        return self._output(x)


    def forward_folded(self, x: torch.Tensor, steps: int) -> torch.Tensor:
        """Counts of the block's neurons on its own T-step window, time folded into the batch
        (``(N*T, *in)`` -> ``(N*T, *out)``, see :func:`folded_synapse`). No step of delay: on
        the chip each layer's window starts one step after its input layer's (the compiled
        graph resets it there), so for a feed-forward network this equals :meth:`forward` on
        ``T + depth`` steps cut to each block's window (tests/training/test_training_window.py)."""
        if getattr(self, 'mask', None) is not None:
            self.synapse.weight.data *= self.mask
        z = folded_synapse(self.synapse, x, self.neuron.quantized, self.neuron.w_scale)
        return self.neuron.forward_folded(z, steps)


class Input(AbstractQBLIF, base.AbstractInput):
    """lava-dl input block with a QB-LIF neuron (``neuron_params=None``: pass-through)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.neuron is not None:
            self.pre_hook_fx = self.neuron.quantize_8bit

    forward = base.AbstractInput.forward


class Flatten(base.AbstractFlatten):
    """lava-dl flatten block (``NCHWT -> N(CHW)T``); exported ``shape`` is ``[CHW, 1, 1]``."""

    def forward(self, x):
        if self.shape is None:   # lava-dl indexes x.shape[3], which fails for NCT input
            self.shape = [int(torch.tensor(x.shape[1:-1]).prod()), 1, 1]
        x = x.reshape((x.shape[0], -1, x.shape[-1]))
        return (x, None) if self.count_log is True else x


    def forward_folded(self, x: torch.Tensor, steps: int) -> torch.Tensor:
        """``(N*T, C, H, W)`` -> ``(N*T, C*H*W)`` in lava-dl's (C, H, W) order."""
        if self.shape is None:
            self.shape = [int(np.prod(x.shape[1:])), 1, 1]
        return x.contiguous().reshape(len(x), -1)


class Average(base.AbstractAverage):
    """lava-dl average block (population averaging of an output layer)."""

    def export_hdf5(self, handle):
        # lava-dl's AbstractAverage.export_hdf5 reads self.neuron.shape, which it lacks
        handle.create_dataset('type', (1, ), 'S10', [b'average'])
        handle.create_dataset('shape', data=np.array(self.shape))


class Dense(AbstractQBLIF, base.AbstractDense):
    """Dense QB-LIF block; also the usual output block (its counts are the class scores)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._build_synapse(synapse.Dense, kwargs)
        self.neuron.shape = torch.Size([self.synapse.out_channels])
        self.neuron.num_neurons = self.synapse.out_channels


class Conv(AbstractQBLIF, base.AbstractConv):
    """Convolution QB-LIF block (``NCHWT``)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._build_synapse(synapse.Conv, kwargs)


class Pool(AbstractQBLIF, base.AbstractPool):
    """Sum-pooling QB-LIF block (lava-dl Pool synapse: fixed weight ``weight_scale``)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._build_synapse(synapse.Pool, kwargs)


class Recurrent(AbstractQBLIF, base.AbstractRecurrent):
    """Recurrent dense QB-LIF block (lava-dl ``cuba.Recurrent``'s layer, NetX ``dense_rec``).

    ``s[t] = f(W x[t] + R s[t-1])``: ``W`` (``input_synapse``, ``in_neurons -> out_neurons``)
    and ``R`` (``recurrent_synapse``, ``out_neurons -> out_neurons``) are 8-bit quantized as
    the other blocks; ``s`` are the burst counts ``n``, fed back with one step of delay (the
    chip's recurrent synapse step). Input ``(N, in_neurons, T)``, output
    ``(N, out_neurons, T)`` counts, delayed by one step with ``delay_shift`` (default) and by
    the axonal delays with ``delay=True`` (on the output only: the feedback is not delayed,
    as lava-dl's block).

    Unlike lava-dl's block the neuron state is not persistent: every forward starts from
    zero (one sample per forward), so batches are independent. The time loop runs in autograd
    (full BPTT through the feedback and the neuron states); in the quantized mode it is the
    chip's integer arithmetic (float64 tensors holding integers), as :class:`Dense`.
    ``requires_grad=False`` freezes ``R``. ``export_hdf5`` is lava-dl's (``type``
    ``dense_rec``, ``weight``, ``weight_rec``, ``delay``, ``neuron/*``).
    """

    def __init__(self, neuron_params, *args, **kwargs):
        # lava-dl's AbstractRecurrent writes persistent_state=True into the caller's dict
        super().__init__(dict(neuron_params), *args, **kwargs)
        self.persistent_state = False
        self.neuron.persistent_state = False
        self.input_synapse = synapse.Dense(**self.synapse_params)
        self.recurrent_synapse = synapse.Dense(**self.recurrent_params)
        if kwargs.get('pre_hook_fx') is None:
            self.input_synapse.pre_hook_fx = self.neuron.quantize_8bit
            self.recurrent_synapse.pre_hook_fx = self.neuron.quantize_8bit
        self.recurrent_synapse.weight.requires_grad_(bool(self.requires_grad))
        self.neuron.shape = torch.Size([self.input_synapse.out_channels])
        self.neuron.num_neurons = self.input_synapse.out_channels
        del self.synapse_params
        del self.recurrent_params

    @property
    def synapse(self):
        """The input synapse (the blocks' common name, e.g. for weight statistics)."""
        return self.input_synapse

    def recurrent_matrix(self) -> torch.Tensor:
        """The quantized recurrent weights ``R`` ``(out, out)`` (SLAYER units, w_int / 64)."""
        syn = self.recurrent_synapse
        w = syn.weight if syn._pre_hook_fx is None else syn._pre_hook_fx(syn.weight)
        return w.reshape(w.shape[:2])

    def _dynamics(self, z):
        """Counts ``(N, C, T)`` of the neuron driven by ``z`` plus the recurrent feedback."""
        neuron = self.neuron
        neuron._init_shape(z)
        neuron.clamp()
        theta = neuron._theta_view(neuron.quantized_threshold())
        quantized = neuron.quantized
        dtype = torch.float64 if quantized else z.dtype
        z = z.to(dtype)
        r_t = self.recurrent_matrix().to(dtype).t()
        u = torch.zeros(z.shape[:-1], dtype=dtype, device=z.device)
        v = torch.zeros_like(u)
        n = torch.zeros_like(u)
        run = neuron._run_quantized if quantized else neuron._run_float
        out = []
        for t in range(z.shape[-1]):
            zt = (z[..., t] + n @ r_t).unsqueeze(-1)
            ns, us, vs = run(zt, theta, u, v)        # quantized: u, v in chip units
            n, u, v = ns[..., 0].to(dtype), us[..., 0], vs[..., 0]
            if neuron.drop is not None:
                n = neuron.drop(n)
            out.append(n)
        return torch.stack(out, -1)

    def forward(self, x):
        """``NCT`` input counts -> ``NCT`` output counts (see the class docstring)."""
        dtype = x.dtype
        z = self._synapse_forward(x, self.input_synapse)
        x = self._dynamics(z).to(dtype)
        return self._output(x)
