"""Pure-numpy reference of QB-LIF fixed-point dynamics (spec section 1).

This module is the single source of truth for the integer arithmetic: the
Lava ``fixed_pt`` model, the SLAYER quantized forward (tested against it) and
the compiler's checks all agree with :func:`step`.

Units
-----
* ``a``: synaptic input in weight units (8-bit weight mantissa times the
  presynaptic count n), int32, shape ``(N,)``.
* ``u``, ``v``: 24-bit states; the input is MSB-aligned by ``a << 6``.
* ``du``, ``dv``: 12-bit decays (0..4095); the effective current decay is
  ``du + 1`` (Loihi's ``ds_offset``), the voltage decay ``dv``.
* ``vth``: threshold mantissa (17-bit unsigned); the comparator threshold is
  ``theta = vth << 6`` in state units.
* ``bias = bias_mant << bias_exp`` (right shift for negative ``bias_exp``).

The operation order and integer widths mirror Lava's
``AbstractPyLifModelFixed.subthr_dynamics`` exactly (an int64 product, round
toward zero, a cast to int32, a single 24-bit wrap of ``u``, a clip of ``v``).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from qblif.core.constants import DECAY_SHIFT, DECAY_UNITY, STATE_SHIFT, UV_BITS  # noqa: F401

MAX_UV = 2 ** (UV_BITS - 1)          # 2^23
ACT_SHIFT = STATE_SHIFT               # a << 6 aligns input with u
VTH_SHIFT = STATE_SHIFT               # theta = vth << 6
V_MIN = -MAX_UV + 1
V_MAX = MAX_UV - 1
RESET_MODES = ("subtract", "zero")


def rtz_shift(x: np.ndarray, shift: int = DECAY_SHIFT) -> np.ndarray:
    """Arithmetic right shift rounding toward zero: ``sign(x) * (|x| >> shift)``."""
    x = np.asarray(x, dtype=np.int64)
    return np.sign(x) * np.right_shift(np.abs(x), shift)


def wrap24(x: np.ndarray) -> np.ndarray:
    """Lava's single 24-bit wrap of ``u``: above 2^23 subtract 2^24; at or below -2^23 add 2^24."""
    x = np.asarray(x)
    w = np.where(x > MAX_UV, x - 2 * MAX_UV, x)
    return np.where(w <= -MAX_UV, x + 2 * MAX_UV, w)


def effective_bias(bias_mant, bias_exp) -> np.ndarray:
    """``bias_mant << bias_exp`` (a right shift when ``bias_exp < 0``), as int32."""
    mant = np.asarray(bias_mant, dtype=np.int32)
    exp = np.asarray(bias_exp, dtype=np.int32)
    return np.where(exp >= 0, np.left_shift(mant, np.maximum(exp, 0)),
                    np.right_shift(mant, np.maximum(-exp, 0))).astype(np.int32)


def burst_count(v: np.ndarray, theta: np.ndarray, max_burst: int) -> np.ndarray:
    """Spike count of a burst: ``0 if v <= theta else min(K, (v - 1) // theta)``.

    This is what K compare-and-subtract steps with Loihi's strict comparator
    (``v > theta``) compute. ``theta`` is in state units (``vth << 6``).

    Computed as ``clip(floor((v - 1) / theta), 0, K)`` in float64, which is exact
    for the 24-bit ``v`` and ``theta`` (the quotient of two integers below 2^24 is
    never rounded across an integer in float64) and vectorises, unlike numpy's
    integer division; ``v <= theta`` gives a quotient below 1, hence 0.
    """
    q = (np.asarray(v) - 1) / np.asarray(theta, dtype=np.float64)
    np.floor(q, out=q)
    np.clip(q, 0, max_burst, out=q)
    return q.astype(np.int32)


def reset_voltage(v: np.ndarray, n: np.ndarray, theta: np.ndarray, reset_mode: str) -> np.ndarray:
    """Reset after a burst of ``n``: subtract ``n * theta``, or zero where ``n > 0``.

    ``n * theta <= v - 1`` when ``n > 0``, so int32 arithmetic cannot overflow.
    """
    if reset_mode == "subtract":
        return (np.asarray(v) - n * np.asarray(theta)).astype(np.int32)
    return np.where(n > 0, 0, v).astype(np.int32)


def current_update(u, a, du) -> np.ndarray:
    """``u = wrap24(rtz(u * (4096 - (du + 1)), 12) + (a << 6))`` with Lava's int widths."""
    decayed = rtz_shift(np.int64(1) * np.asarray(u, np.int64) * (DECAY_UNITY - (int(du) + 1)))
    total = decayed.astype(np.int32) + np.left_shift(np.asarray(a, np.int32), ACT_SHIFT)
    return wrap24(total).astype(np.int32)


def voltage_update(v, u, dv, bias) -> np.ndarray:
    """``v = clip(rtz(v * (4096 - dv), 12) + u + bias, -(2^23-1), 2^23-1)``."""
    decayed = rtz_shift(np.asarray(v, np.int64) * (DECAY_UNITY - int(dv)))
    total = decayed.astype(np.int32) + np.asarray(u, np.int32) + np.asarray(bias, np.int32)
    return np.clip(total, V_MIN, V_MAX).astype(np.int32)


@dataclass
class QBLIFState:
    """Integer state of a QB-LIF population: ``u``, ``v`` int32 arrays of shape ``(N,)``."""
    u: np.ndarray
    v: np.ndarray

    @classmethod
    def zeros(cls, shape) -> "QBLIFState":
        return cls(np.zeros(shape, np.int32), np.zeros(shape, np.int32))


def step(state: QBLIFState, a, *, du, dv, vth, bias_mant=0, bias_exp=0,
         max_burst=1, reset_mode="subtract") -> np.ndarray:
    """Advance ``state`` in place by one timestep; return the burst counts n (int32, 0..K)."""
    state.u = current_update(state.u, a, du)
    v = voltage_update(state.v, state.u, dv, effective_bias(bias_mant, bias_exp))
    theta = np.left_shift(np.asarray(vth, np.int64), VTH_SHIFT)
    n = burst_count(v, theta, max_burst)
    state.v = reset_voltage(v, n, theta, reset_mode)
    return n


def simulate(a_seq, *, shape=None, du, dv, vth, bias_mant=0, bias_exp=0, max_burst=1,
             reset_mode="subtract", reset_interval=None, reset_offset=0, record=False):
    """Run :func:`step` over ``a_seq`` of shape ``(T, N...)``.

    Returns counts ``(T, N...)``; with ``record=True`` also ``u`` and ``v``
    after each step (the values Lava's Vars show after that step). With
    ``reset_interval`` the states are zeroed at the start of every step t
    (1-based, Lava's time step) where ``(t - reset_offset) % reset_interval == 0``,
    as Lava's ``LIFReset`` does.
    """
    a_seq = np.asarray(a_seq)
    shape = a_seq.shape[1:] if shape is None else shape
    state = QBLIFState.zeros(shape)
    ns, us, vs = [], [], []
    for t, a in enumerate(a_seq, start=1):
        if reset_interval and (t - reset_offset) % reset_interval == 0:
            state = QBLIFState.zeros(shape)
        ns.append(step(state, a, du=du, dv=dv, vth=vth, bias_mant=bias_mant,
                       bias_exp=bias_exp, max_burst=max_burst, reset_mode=reset_mode))
        us.append(state.u.copy())
        vs.append(state.v.copy())
    ns = np.stack(ns) if ns else np.zeros((0, *shape), np.int32)
    if record:
        return ns, np.stack(us), np.stack(vs)
    return ns
