"""QB-LIF neuron for lava-dl SLAYER (spec sections 1-3).

Units (as lava-dl CUBA, ``scale = 1 << 6``):

* synaptic input ``z`` (the block's synapse output): SLAYER units, ``z = a / 64`` where ``a`` is
  the chip's synaptic input in weight units (``w_int * n`` summed, ``w_int`` even in [-256, 254]);
* states ``u``, ``v``: SLAYER states times ``4096`` are the chip's 24-bit integer states;
* ``threshold`` ``theta_f``: exported mantissa ``vThMant = round(theta_f * 64)``, comparator
  threshold ``vThMant << 6`` in chip units, i.e. ``theta_f`` in SLAYER state units;
* ``current_decay``, ``voltage_decay``: fractions; ``iDecay = round(current_decay * 4096)`` and
  ``vDecay = round(voltage_decay * 4096)`` as CUBA exports them; the chip gets ``du = iDecay - 1``
  (Lava's effective current decay is ``du + 1 = iDecay``) and ``dv = vDecay``.

Two forward modes, chosen by the attribute ``quantized`` (default ``True``; see
:func:`set_quantized`):

* quantized: mirrors :func:`qblif.core.reference.step` exactly on float64 tensors holding chip
  integers, differentiable through straight-through estimators and the ReLSG-ET surrogate;
* float (spec section 2): ``u = u (1 - du) + z``, ``v = v (1 - dv) + u``, same count and reset.
"""
from __future__ import annotations

import numpy as np
import torch

from lava.lib.dl.slayer.neuron import base
from lava.lib.dl.slayer.utils import quantize

from qblif.core.params import DECAY_RANGE, MAX_BURST_RANGE, VTH_RANGE, check_reset_mode, message_bits
from qblif.core.reference import ACT_SHIFT, DECAY_UNITY, MAX_UV, V_MAX, V_MIN, VTH_SHIFT
from qblif.training.slayer import fused
from qblif.training.slayer.surrogate import ReLSGET

W_SCALE = 1 << ACT_SHIFT                    # weight float = w_int / 64
S_SCALE = W_SCALE << VTH_SHIFT              # chip state = SLAYER state * 4096
MIN_THRESHOLD = VTH_RANGE[0] / W_SCALE      # 1/64
MAX_THRESHOLD = VTH_RANGE[1] / W_SCALE
I_DECAY_RANGE = (DECAY_RANGE[0] + 1, DECAY_RANGE[1] + 1)   # iDecay = du + 1 in [1, 4096]
V_DECAY_RANGE = DECAY_RANGE                                 # vDecay = dv in [0, 4095]


def _ste(x, y):
    """Forward ``y``, gradient of ``x`` (straight-through estimator)."""
    return x + (y - x).detach()


def _rtz(x):
    """``rtz(x, 12)`` of the reference (``sign(x) * (|x| >> 12)``) on float64 integers, STE."""
    y = x / DECAY_UNITY
    return _ste(y, torch.trunc(y))


def _wrap_int32(x):
    """Two's-complement int32 wrap (numpy's int32 overflow in reference.current_update), STE."""
    return _ste(x, torch.remainder(x + 2.0 ** 31, 2.0 ** 32) - 2.0 ** 31)


def _wrap24(x):
    """:func:`qblif.core.reference.wrap24` (one 24-bit wrap of ``u``), STE."""
    w = torch.where(x > MAX_UV, x - 2 * MAX_UV, x)
    w = torch.where(w <= -MAX_UV, x + 2 * MAX_UV, w)
    return _ste(x, w)


class Neuron(base.Neuron):
    """QB-LIF neuron: a CUBA LIF neuron that emits a burst count ``n`` in ``0..max_burst``.

    Input ``(N, *shape, T)`` synaptic input in SLAYER units (``a / 64``); output the counts ``n``
    with the same shape and dtype (graded spikes of payload ``n``).

    Parameters
    ----------
    threshold : float or sequence of floats
        the learnable scale ``theta_f`` (``nn.Parameter`` ``threshold_param``, shape ``(1,)`` or
        ``(C,)``), clamped to ``[1/64, (2^17-1)/64]``; quantized to ``round(theta_f*64)/64`` in the
        forward pass with a straight-through estimator.
    current_decay, voltage_decay : float
        decay fractions (``iDecay = current_decay * 4096`` in [1, 4096],
        ``vDecay = voltage_decay * 4096`` in [0, 4095]); learnable when ``requires_grad``.
    max_burst : int
        K in [1, 255].
    reset_mode : {'subtract', 'zero'}
    per_channel : bool
        one threshold per output channel (dim 1 of the input). ``num_channels`` gives C at
        construction; otherwise the parameter is expanded in place at the first forward.
    tau_grad : float
        ReLSG-ET tail width in units of theta. ``scale_grad``: gradient scale.
    learn_threshold : bool
        whether the threshold is trained (default True).
    quantized : bool
        forward mode (default True, exact chip arithmetic).
    scale : int
        must be ``1 << 6`` (the chip's weight/threshold scaling).
    norm, dropout, persistent_state, shared_param, requires_grad :
        as lava-dl CUBA. ``norm`` works in the float mode only; ``shared_param`` must be True
        (the chip model has scalar decays).
    """

    def __init__(self, threshold, current_decay, voltage_decay, max_burst=1,
                 reset_mode='subtract', per_channel=False, num_channels=None,
                 tau_grad=1, scale_grad=1, scale=1 << 6, norm=None, dropout=None,
                 shared_param=True, persistent_state=False, requires_grad=False,
                 learn_threshold=True, quantized=True):
        if scale != W_SCALE:
            raise ValueError(f"scale={scale!r} is not supported: QB-LIF uses scale=1<<6 "
                             f"(weights w_int/64, states x4096 = chip states)")
        if not shared_param:
            raise ValueError("shared_param=False is not supported: the chip model has scalar "
                             "decays (use per_channel=True for per-channel thresholds)")
        thr = np.asarray(threshold, dtype=np.float64).reshape(-1)
        if thr.size == 0 or not np.all(np.isfinite(thr)):
            raise ValueError(f"threshold={threshold!r} is invalid: expected finite floats")
        super().__init__(threshold=float(thr.mean()), tau_grad=tau_grad, scale_grad=scale_grad,
                         p_scale=DECAY_UNITY, w_scale=W_SCALE, s_scale=S_SCALE, norm=norm,
                         dropout=dropout, persistent_state=persistent_state,
                         shared_param=shared_param, requires_grad=requires_grad)
        k = int(max_burst)
        if k != max_burst or not MAX_BURST_RANGE[0] <= k <= MAX_BURST_RANGE[1]:
            raise ValueError(f"max_burst={max_burst!r} is out of range: allowed {MAX_BURST_RANGE}")
        self.max_burst = k
        self.reset_mode = check_reset_mode(reset_mode)
        self.per_channel = bool(per_channel)
        self.tau_grad = float(tau_grad)
        self.scale_grad = float(scale_grad)
        self.quantized = bool(quantized)
        if thr.size > 1:
            self.per_channel = True
            if num_channels is not None and int(num_channels) != thr.size:
                raise ValueError(f"threshold has {thr.size} values, num_channels={num_channels}")
        elif self.per_channel and num_channels is not None:
            thr = np.full(int(num_channels), thr[0])
        self.threshold_param = torch.nn.Parameter(torch.tensor(thr, dtype=torch.float32),
                                                  requires_grad=bool(learn_threshold))
        for name, value, lo_hi in (('current_decay', current_decay, I_DECAY_RANGE),
                                   ('voltage_decay', voltage_decay, V_DECAY_RANGE)):
            if not np.isscalar(value):
                raise ValueError(f"{name}={value!r} must be a scalar fraction")
            self.register_parameter(name, torch.nn.Parameter(
                torch.tensor([float(value) * self.p_scale], dtype=torch.float32),
                requires_grad=self.requires_grad))
        self.register_buffer('current_state', torch.zeros(1, dtype=torch.float64),
                             persistent=False)
        self.register_buffer('voltage_state', torch.zeros(1, dtype=torch.float64),
                             persistent=False)
        self.clamp()

    # ------------------------------------------------------------------ parameters
    @property
    def threshold(self):
        """The learnable threshold ``theta_f`` (SLAYER units), shape ``(1,)`` or ``(C,)``."""
        return self.threshold_param

    def clamp(self):
        """Clamp threshold to [1/64, (2^17-1)/64] and decays to their chip ranges (in place)."""
        with torch.no_grad():
            self.threshold_param.data.clamp_(MIN_THRESHOLD, MAX_THRESHOLD)
            self.current_decay.data.clamp_(*I_DECAY_RANGE)
            self.voltage_decay.data.clamp_(*V_DECAY_RANGE)

    @property
    def device(self):
        return self.threshold_param.device

    def quantized_threshold(self):
        """``vThMant / 64`` with ``vThMant = round(theta_f * 64)``, straight-through; ``(1,)|(C,)``."""
        return quantize(self.threshold_param, step=1 / W_SCALE).clamp(MIN_THRESHOLD, MAX_THRESHOLD)

    @property
    def v_th_mant(self):
        """Exported threshold mantissa: int, or int64 array ``(C,)`` when per channel."""
        val = np.rint(self.quantized_threshold().detach().cpu().double().numpy() * W_SCALE)
        val = val.astype(np.int64)
        return int(val[0]) if (val.size == 1 and not self.per_channel) else val

    @property
    def cx_current_decay(self):
        """``iDecay`` (int, 1..4096); the chip's ``du = iDecay - 1``."""
        self.clamp()
        return int(quantize(self.current_decay).item())

    @property
    def cx_voltage_decay(self):
        """``vDecay`` (int, 0..4095) = the chip's ``dv``."""
        self.clamp()
        return int(quantize(self.voltage_decay).item())

    @property
    def ref_delay(self):
        return 1

    @property
    def scale(self):
        return self.w_scale

    @property
    def message_bits(self):
        """``bit_length(max_burst)``: graded payload width of the count."""
        return message_bits(self.max_burst)

    @property
    def device_params(self):
        """The spec section 5 neuron group (strings as fixed-length ASCII bytes)."""
        return {
            'type': np.bytes_(b'QBLIF'),
            'iDecay': self.cx_current_decay,
            'vDecay': self.cx_voltage_decay,
            'vThMant': self.v_th_mant,
            'maxBurst': self.max_burst,
            'resetMode': np.bytes_(self.reset_mode.encode('ascii')),
            'refDelay': self.ref_delay,
            'messageBits': self.message_bits,
        }

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # a per-channel threshold not yet expanded (channels unknown until the first forward)
        # takes the stored shape
        saved = state_dict.get(prefix + 'threshold_param')
        if (saved is not None and self.per_channel and self.threshold_param.numel() == 1
                and saved.shape != self.threshold_param.shape):
            self.threshold_param.data = self.threshold_param.data.expand(saved.shape).clone()
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    # ------------------------------------------------------------------ forward
    def _init_shape(self, input):
        if self.shape is None:
            self.shape = input.shape[1:-1]
            if len(self.shape) == 0:
                raise AssertionError(f"Expected input [Batch, Spatial dims ..., Time], "
                                     f"got shape {tuple(input.shape)}")
            self.num_neurons = int(np.prod(self.shape))
        elif tuple(input.shape[1:-1]) != tuple(self.shape):
            raise AssertionError(f"Input tensor shape ({tuple(input.shape)}) does not match "
                                 f"Neuron shape ({tuple(self.shape)}).")
        if self.per_channel and self.threshold_param.numel() != self.shape[0]:
            if self.threshold_param.numel() != 1:
                raise AssertionError(f"{self.threshold_param.numel()} thresholds for "
                                     f"{self.shape[0]} channels")
            self.threshold_param.data = self.threshold_param.data.expand(
                int(self.shape[0])).clone()

    def _theta_view(self, theta):
        """Threshold ``(1,)|(C,)`` -> broadcastable to a step's ``(N, *shape)``."""
        if self.per_channel:
            return theta.reshape((-1,) + (1,) * (len(self.shape) - 1))
        return theta.reshape(())

    def _initial_states(self, input):
        s = input.shape[:-1]
        if not self.persistent_state or self.current_state.shape != s:
            zeros = torch.zeros(s, dtype=torch.float64, device=input.device)
            return zeros, zeros.clone()
        return self.current_state.to(torch.float64), self.voltage_state.to(torch.float64)

    def forward(self, input):
        """Counts ``n`` ``(N, *shape, T)`` for the synaptic input ``(N, *shape, T)``."""
        n, _, _ = self._forward(input, states=False)
        if self.drop is not None:
            n = self.drop(n)
        return n

    def forward_states(self, input):
        """Like :meth:`forward` without dropout, returning ``(n, u, v)``.

        ``u``, ``v``: float64 ``(N, *shape, T)`` in SLAYER units (times 4096 = chip integers in
        the quantized mode), ``v`` after the reset, as :func:`qblif.core.reference.simulate`
        records them.
        """
        return self._forward(input, states=True)

    def _forward(self, input, states):
        """``(n, u, v)``; ``u``, ``v`` as :meth:`forward_states` when ``states`` (otherwise
        whatever is cheapest: only ``n`` is used)."""
        self._init_shape(input)
        self.clamp()
        theta = self._theta_view(self.quantized_threshold())
        u, v = self._initial_states(input)
        if self.quantized:
            if self.norm is not None:
                raise NotImplementedError("norm is not supported in the quantized mode")
            if torch.is_grad_enabled():
                ns, us, vs = self._run_quantized(input, theta, u * S_SCALE, v * S_SCALE)
            else:
                ns, us, vs = self._run_quantized_nograd(input, theta, u * S_SCALE, v * S_SCALE,
                                                        states or self.persistent_state)
                if us is None:
                    return ns.to(input.dtype), None, None
            us, vs = us / S_SCALE, vs / S_SCALE
        else:
            ns, us, vs = self._run_float(input, theta, u, v)
            if self.persistent_state:
                self.current_state = us[..., -1].detach().double()
                self.voltage_state = vs[..., -1].detach().double()
            if states:
                us = us.to(torch.float64, memory_format=torch.contiguous_format)
                vs = vs.to(torch.float64, memory_format=torch.contiguous_format)
            return ns.to(input.dtype), us, vs
        if self.persistent_state:
            self.current_state = us[..., -1].detach().clone()
            self.voltage_state = vs[..., -1].detach().clone()
        return ns.to(input.dtype), us, vs

    # ------------------------------------------------------------------ folded time
    def fused_ok(self, z: torch.Tensor) -> bool:
        """Whether :meth:`forward_folded` runs the fused C kernel for ``z`` (quantized mode,
        CPU, no persistent state, dropout, norm or learnable decay, the kernel built)."""
        return (self.quantized and z.device.type == 'cpu' and not self.persistent_state
                and self.drop is None and self.norm is None
                and not (self.current_decay.requires_grad or self.voltage_decay.requires_grad)
                and fused.library() is not None)

    def forward_folded(self, z: torch.Tensor, steps: int) -> torch.Tensor:
        """Counts for the synaptic input ``z`` ``(N*T, *shape)`` with time folded into the
        batch (sample-major: row ``i * T + t`` is sample i, step t; states start at zero for
        every sample). Same values and gradients as :meth:`forward` on ``(N, *shape, T)``;
        the quantized mode runs :class:`fused.QuantizedBurst` (a ``channels_last`` ``z`` stays
        channels-last), anything else the step-by-step code."""
        n_t = z.shape[0] // steps
        if not self.fused_ok(z):
            x = z.reshape(n_t, steps, *z.shape[1:]).movedim(1, -1)
            y = self.forward(x)
            return y.movedim(-1, 1).reshape(z.shape)
        self._init_shape(z[:1].unsqueeze(-1))
        self.clamp()
        theta = self.quantized_threshold()
        last = z.dim() == 4 and not z.is_contiguous() and z.is_contiguous(
            memory_format=torch.channels_last)
        phys = z.permute(0, 2, 3, 1) if last else z          # memory order
        # one threshold per neuron, in the memory order of phys
        if self.per_channel:
            ch = (-1,) + (1,) * (len(self.shape) - 1)
            full = theta.reshape(ch).expand(self.shape)
            full = full.permute(1, 2, 0) if last else full
        else:
            full = theta.reshape(()).expand(phys.shape[1:])
        n = fused.quantized_burst(
            phys.reshape(n_t, steps, -1).to(torch.float32), full.reshape(-1),
            self.cx_current_decay, self.cx_voltage_decay, self.max_burst,
            self.reset_mode == 'zero', self.tau_grad, self.scale_grad)
        n = n.reshape(phys.shape)
        return (n.permute(0, 3, 1, 2) if last else n).to(z.dtype)

    def _reset(self, v, n, theta):
        """:func:`qblif.core.reference.reset_voltage`."""
        if self.reset_mode == 'subtract':
            return v - n * theta
        return v * (n == 0).to(v.dtype)

    def _run_quantized(self, input, theta_f, u, v):
        """Mirror of :func:`qblif.core.reference.step` in chip integers (float64)."""
        f64 = torch.float64
        z = input.to(f64) * W_SCALE
        a = _ste(z, torch.round(z))    # weight units (exact for integer graded inputs)
        a_shift = _wrap_int32(a * (1 << ACT_SHIFT))        # (a << 6) in int32
        i_decay = quantize(self.current_decay).to(f64)     # du + 1
        v_decay = quantize(self.voltage_decay).to(f64)     # dv
        theta = theta_f.to(f64) * S_SCALE                  # vth << 6
        ns, us, vs = [], [], []
        for t in range(input.shape[-1]):
            u = _wrap24(_wrap_int32(_rtz(u * (DECAY_UNITY - i_decay)) + a_shift[..., t]))
            v = torch.clamp(_rtz(v * (DECAY_UNITY - v_decay)) + u, V_MIN, V_MAX)
            n = ReLSGET.apply(v, theta, self.max_burst, self.tau_grad, self.scale_grad)
            v = self._reset(v, n, theta)
            ns.append(n)
            us.append(u)
            vs.append(v)
        return torch.stack(ns, -1), torch.stack(us, -1), torch.stack(vs, -1)

    def _run_quantized_nograd(self, input, theta_f, u, v, states):
        """:meth:`_run_quantized` without autograd (evaluation): the same float64 operations
        minus the straight-through estimators, whose forward value is exactly the quantized
        one (``x + (y - x) == y`` for the integers and integer-plus-fraction values involved),
        on time-first buffers. ``states=False``: ``u``, ``v`` are not recorded (``None``)."""
        f64 = torch.float64
        a = torch.round(input.to(f64).movedim(-1, 0) * W_SCALE)     # (T, N, *shape)
        a_shift = torch.remainder(a * (1 << ACT_SHIFT) + 2.0 ** 31, 2.0 ** 32) - 2.0 ** 31
        keep_u = DECAY_UNITY - quantize(self.current_decay).to(f64)
        keep_v = DECAY_UNITY - quantize(self.voltage_decay).to(f64)
        theta = theta_f.to(f64) * S_SCALE
        k = self.max_burst
        zero = self.reset_mode == 'zero'
        # the int32 wrap of u + (a << 6) is the identity while |u + (a << 6)| < 2^31. Neither
        # the decay (rtz of u * (4096 - iDecay) / 4096) nor the 24-bit wrap increases |u|,
        # so |u[t]| <= max|u[0]| + sum over steps of max|a << 6|: below 2^31 the wrap is skipped
        bound = 0.0
        if a_shift.numel():
            bound = float(a_shift.abs().flatten(1).max(1).values.sum()) + float(u.abs().max())
        wrap32 = not bound < 2.0 ** 31 - 1
        steps = a_shift.shape[0]
        ns = torch.empty_like(a_shift)
        us = torch.empty_like(a_shift) if states else None
        vs = torch.empty_like(a_shift) if states else None
        for t in range(steps):
            u = torch.mul(u, keep_u).div_(DECAY_UNITY).trunc_().add_(a_shift[t])
            if wrap32:
                u = torch.remainder(u + 2.0 ** 31, 2.0 ** 32) - 2.0 ** 31
            w = torch.where(u > MAX_UV, u - 2 * MAX_UV, u)
            u = torch.where(w <= -MAX_UV, u + 2 * MAX_UV, w)
            v = torch.mul(v, keep_v).div_(DECAY_UNITY).trunc_().add_(u).clamp_(V_MIN, V_MAX)
            n = torch.div(v, theta, out=ns[t]).ceil_().sub_(1).clamp_(0, k)
            if zero:
                v = v.mul_((n == 0).to(f64))
            else:
                v = v.sub_(n * theta)
            if states:
                us[t] = u
                vs[t] = v
        ns = ns.movedim(0, -1).contiguous()
        if not states:
            return ns, None, None
        return ns, us.movedim(0, -1).contiguous(), vs.movedim(0, -1).contiguous()

    def _run_float(self, input, theta, u, v):
        """Spec section 2 in SLAYER units: ``u = u(1-du) + z``, ``v = v(1-dv) + u``.

        Returns ``(n, u, v)`` in ``input``'s dtype, time last. The time loops run inside
        :class:`_LeakyIntegrator` and :class:`_BurstVoltage` (hand-written backward, the
        gradient autograd gives for the step-by-step formulas) on time-first buffers.
        """
        dtype = input.dtype
        u, v = u.to(dtype), v.to(dtype)
        keep_u = 1 - quantize(self.current_decay) / self.p_scale
        keep_v = 1 - quantize(self.voltage_decay) / self.p_scale
        theta = theta.to(dtype)
        x = input.movedim(-1, 0).contiguous()            # (T, N, *shape)
        current = _LeakyIntegrator.apply(x, keep_u.to(dtype), u)
        if self.norm is not None:
            current = self.norm(current.movedim(0, -1)).movedim(-1, 0).contiguous()
        n, v_out = _BurstVoltage.apply(current, keep_v.to(dtype), theta, v, self.max_burst,
                                       self.tau_grad, self.scale_grad,
                                       self.reset_mode == 'zero')
        return n.movedim(0, -1).contiguous(), current.movedim(0, -1), v_out.movedim(0, -1)


def _sum_to(x, shape):
    return x.sum_to_size(shape) if tuple(x.shape) != tuple(shape) else x


class _LeakyIntegrator(torch.autograd.Function):
    """``u[t] = u[t-1] * keep + x[t]`` over time-first ``x`` ``(T, ...)``; ``keep`` ``(1,)``.

    Same float operations as the step-by-step loop (bit-identical forward); backward
    ``gx[t] = g[t] + keep * gx[t+1]``, ``gkeep = sum_t gx[t] * u[t-1]``, ``gu0 = keep * gx[0]``.
    """

    @staticmethod
    def forward(ctx, x, keep, u0):
        out = torch.empty_like(x)
        u = u0
        for t in range(x.shape[0]):
            u = torch.add(torch.mul(u, keep), x[t], out=out[t])
        ctx.save_for_backward(keep, u0, out if ctx.needs_input_grad[1] else None)
        return out

    @staticmethod
    def backward(ctx, grad):
        keep, u0, out = ctx.saved_tensors
        gx = torch.empty_like(grad)
        gx[-1] = grad[-1]
        for t in range(grad.shape[0] - 2, -1, -1):
            torch.add(grad[t], torch.mul(gx[t + 1], keep), out=gx[t])
        gkeep = gu0 = None
        if ctx.needs_input_grad[1]:
            prev = torch.cat([u0.expand(grad.shape[1:]).unsqueeze(0), out[:-1]], 0)
            gkeep = _sum_to(gx * prev, keep.shape)
        if ctx.needs_input_grad[2]:
            gu0 = _sum_to(gx[0] * keep, u0.shape)
        return gx, gkeep, gu0


class _BurstVoltage(torch.autograd.Function):
    """Voltage, burst count and reset over time-first current ``c`` ``(T, N, *shape)``.

    Forward, per step (the operations of the step-by-step loop, bit-identical)::

        V = v * keep + c[t];  n = clamp(ceil(V / theta) - 1, 0, K)
        v = V - n * theta   (subtract)   |   v = V * (n == 0)   (zero)

    Returns ``(n, v)`` (``v`` after the reset). Backward: the gradient autograd computes for
    those formulas with :class:`~qblif.training.slayer.surrogate.ReLSGET`'s ReLSG-ET surrogate
    (``dn/dV = S / theta``, ``dn/dtheta = -S V / theta^2``, ``S = scale * g(V / theta)``),
    written as one reverse-time recursion on the gradient of the reset voltage ``gR``::

        gV[t] = A[t] gR[t] + S[t] / theta * gn[t],    A = 1 - S (subtract) | (n == 0) (zero)
        gR[t-1] = gv_out[t-1] + keep * gV[t]
        gtheta = sum(-S V / theta^2 * gN) + sum(-n gR) (subtract),  gN = gn - theta gR | gn
    """

    @staticmethod
    def forward(ctx, c, keep, theta, v0, max_burst, width, scale, zero_reset):
        k = int(max_burst)
        ns = torch.empty_like(c)
        vs = torch.empty_like(c)
        pre = torch.empty_like(c)                          # V before the reset
        v = v0
        for t in range(c.shape[0]):
            vt = torch.add(torch.mul(v, keep), c[t], out=pre[t])
            n = torch.div(vt, theta, out=ns[t]).ceil_().sub_(1).clamp_(0, k)
            if zero_reset:
                v = torch.mul(vt, (n == 0).to(vt.dtype), out=vs[t])
            else:
                v = torch.sub(vt, torch.mul(n, theta), out=vs[t])
        ctx.save_for_backward(pre, ns, vs if ctx.needs_input_grad[1] else None, keep, theta, v0)
        ctx.k, ctx.width, ctx.scale, ctx.zero = k, float(width), float(scale), bool(zero_reset)
        ctx.set_materialize_grads(False)
        return ns, vs

    @staticmethod
    def backward(ctx, gn, gv):
        pre, ns, vs, keep, theta, v0 = ctx.saved_tensors
        k, width, scale, zero = ctx.k, ctx.width, ctx.scale, ctx.zero
        need_keep, need_theta, need_v0 = (ctx.needs_input_grad[1], ctx.needs_input_grad[2],
                                          ctx.needs_input_grad[3])
        gvv = torch.empty_like(pre)                     # dL/dV[t] = dL/dc[t]
        gth = torch.zeros_like(pre[0]) if need_theta else None
        gkp = torch.zeros_like(pre[0]) if need_keep else None
        gr = None if gv is None else gv[-1]             # dL/dR[t] (None: zero)
        # one step at a time: the per-step tensors stay in cache
        for t in range(pre.shape[0] - 1, -1, -1):
            x = pre[t] / theta
            # ReLSG-ET: exp(min(x, 0) / w) below 0, exp(-(x - K) / w) above K, 1 inside
            sur = torch.clamp(x, max=0).sub_(torch.clamp(x - k, min=0)).div_(width).exp_()
            if scale != 1.0:
                sur.mul_(scale)
            gN = gn[t] if gn is not None else torch.zeros_like(x)
            if gr is not None and not zero:
                gN = gN - theta * gr                    # the reset v - n theta
            sd = sur / theta                            # dn/dV
            g = torch.mul(sd, gN, out=gvv[t])           # dL/dV through n
            if gr is not None:
                g.add_(gr if not zero else gr * (ns[t] == 0).to(gr.dtype))
            if need_theta:
                gth.sub_(sd.mul_(gN).mul_(x))           # dn/dtheta = -S x / theta
                if gr is not None and not zero:
                    gth.sub_(ns[t] * gr)
            if need_keep:
                gkp.addcmul_(g, vs[t - 1] if t else v0)
            if t:
                gr = g * keep if gv is None else torch.addcmul(gv[t - 1], g, keep)
        gkeep = _sum_to(gkp, keep.shape) if need_keep else None
        gtheta = _sum_to(gth, theta.shape) if need_theta else None
        gv0 = _sum_to(gvv[0] * keep, v0.shape) if need_v0 else None
        return gvv, gkeep, gtheta, gv0, None, None, None, None


def set_quantized(module: torch.nn.Module, flag: bool = True) -> torch.nn.Module:
    """Set the forward mode of every QB-LIF :class:`Neuron` in ``module``; returns ``module``."""
    for m in module.modules():
        if isinstance(m, Neuron):
            m.quantized = bool(flag)
    return module
