"""LanedDense: Lava ``Dense`` for L samples side by side, holding one weight block.

The compiler's sample lanes (docs/fast_execution.md) run L samples through one Lava graph,
lane-outer on the last axis. For a dense layer that is Lava's ``Dense`` with the
block-diagonal ``(L*N_out, L*N_in)`` weight (L^2 as large as the layer); this process holds
the ``(N_out, N_in)`` weight once and computes exactly that block-diagonal ``Dense``.
"""
from __future__ import annotations

import typing as ty

import numpy as np
from lava.magma.core.process.ports.ports import InPort, OutPort
from lava.magma.core.process.process import AbstractProcess
from lava.magma.core.process.variable import Var


class LanedDense(AbstractProcess):
    """``lanes`` copies of Lava ``Dense(weights, ...)`` side by side, lane-outer.

    weights: integer mantissas ``(N_out, N_in)`` (file order, as Lava ``Dense``'s);
    ``s_in`` ``(lanes*N_in,)`` with lane l at ``l*N_in ..``; ``a_out`` ``(lanes*N_out,)`` with
    lane l at ``l*N_out ..``. Per lane, ``a_out`` is what Lava's ``Dense`` (``fixed_pt``:
    ``PyDenseModelBitAcc``) sends for that lane's input with the same ``weight_exp``,
    ``num_weight_bits``, ``sign_mode`` and ``num_message_bits``: the weights clipped to 8
    bits and truncated, the sum (wrapped as numpy's integer ``dot``) shifted by
    ``weight_exp``, the int32 ``a_out`` wrap, one step of delay."""

    def __init__(self, *, weights: np.ndarray, lanes: int, weight_exp: int = 0,
                 num_weight_bits: int = 8, num_message_bits: int = 0,
                 sign_mode=None, name: ty.Optional[str] = None) -> None:
        weights, lanes = np.asarray(weights), int(lanes)
        extra = {} if sign_mode is None else {"sign_mode": sign_mode}
        super().__init__(weights=weights, lanes=lanes, weight_exp=int(weight_exp),
                         num_weight_bits=int(num_weight_bits),
                         num_message_bits=int(num_message_bits), name=name, **extra)
        if weights.ndim != 2:          # (after AbstractProcess.__init__, as Lava's Dense)
            raise ValueError(f"LanedDense weights must be 2-D (N_out, N_in), got shape "
                             f"{weights.shape}")
        if lanes < 1:
            raise ValueError(f"LanedDense lanes must be >= 1, got {lanes}")
        n_out, n_in = weights.shape
        self.s_in = InPort(shape=(lanes * n_in,))
        self.a_out = OutPort(shape=(lanes * n_out,))
        self.weights = Var(shape=weights.shape, init=weights)
        self.a_buff = Var(shape=(lanes * n_out,), init=0)
        self.num_message_bits = Var(shape=(1,), init=int(num_message_bits))
