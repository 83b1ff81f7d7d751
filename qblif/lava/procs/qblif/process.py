"""QB-LIF as a Lava process (spec section 1)."""
from __future__ import annotations

import typing as ty

import numpy as np
from lava.magma.core.process.ports.ports import InPort, OutPort
from lava.magma.core.process.process import AbstractProcess, LogConfig
from lava.magma.core.process.variable import Var

from qblif.core.params import check_qblif_params, message_bits


class QBLIF(AbstractProcess):
    """Quantized-burst leaky integrate-and-fire neurons.

    Each step a neuron emits a burst count ``n`` in ``0..max_burst`` on
    ``s_out`` (int32); ``n = 0 if v <= theta else min(K, (v - 1) // theta)``
    with ``theta = vth << 6``; then ``v -= n * theta`` (``subtract``) or
    ``v = 0`` where ``n > 0`` (``zero``).

    Parameters (fixed-point units, as Lava's Loihi ``LIF``)
    ----------
    shape : tuple of int
    du, dv : int in [0, 4095]
        12-bit current / voltage decays (effective current decay ``du + 1``).
    vth : int or array of ``shape``, in [1, 2^17 - 1]
        Threshold mantissa; per-neuron arrays give per-channel scales.
    bias_mant : int or array of ``shape``, in [-4096, 4095]  (13-bit signed)
    bias_exp : int or array of ``shape``, in [-7, 7]; bias = bias_mant << bias_exp
    max_burst : int in [1, 255]
        K, the largest burst per step; ``s_out`` then needs ``bit_length(K)`` message bits.
    reset_mode : "subtract" or "zero"
    reset_interval, reset_offset : optional periodic reset of ``u`` and ``v``
        (as Lava's ``LIFReset``): states are zeroed at the start of every
        timestep t with ``t % reset_interval == reset_offset % reset_interval``.

    Ports: ``a_in`` (synaptic input, weight units), ``s_out`` (counts n).
    Vars: ``u``, ``v`` (24-bit states), ``du``, ``dv``, ``max_burst`` of shape (1,);
    ``vth``, ``bias_mant``, ``bias_exp`` of ``shape`` (set them with full-shape arrays).
    """

    def __init__(self, *, shape, du: int = 0, dv: int = 0, vth=10, bias_mant=0, bias_exp=0,
                 max_burst: int = 1, reset_mode: str = "subtract",
                 reset_interval: ty.Optional[int] = None, reset_offset: int = 0,
                 name: ty.Optional[str] = None, log_config: ty.Optional[LogConfig] = None) -> None:
        self._runtime = None  # lets AbstractProcess.__del__ run if validation raises below
        p = check_qblif_params(shape, du, dv, vth, bias_mant, bias_exp, max_burst, reset_mode,
                               reset_interval, reset_offset)
        shape = p["shape"]
        super().__init__(shape=shape, reset_mode=p["reset_mode"],
                         reset_interval=p["reset_interval"], reset_offset=p["reset_offset"],
                         record_uv=None, name=name, log_config=log_config)
        full = lambda x: np.broadcast_to(x, shape).copy()  # noqa: E731
        self.a_in = InPort(shape=shape)
        self.s_out = OutPort(shape=shape)
        self.u = Var(shape=shape, init=0)
        self.v = Var(shape=shape, init=0)
        self.du = Var(shape=(1,), init=p["du"])
        self.dv = Var(shape=(1,), init=p["dv"])
        self.vth = Var(shape=shape, init=full(p["vth"]))
        self.bias_mant = Var(shape=shape, init=full(p["bias_mant"]))
        self.bias_exp = Var(shape=shape, init=full(p["bias_exp"]))
        self.max_burst = Var(shape=(1,), init=p["max_burst"])

    def record_uv_into(self, u_path: str, v_path: str, steps: int) -> None:
        """Have the lean fixed-point model write u and v after each of the first ``steps``
        steps into the int32 ``(steps, size)`` files (``recorder.create_recording``), one row
        per step, in the process itself: no Monitor, no extra process."""
        self.proc_params.overwrite("record_uv", (str(u_path), str(v_path), int(steps)))

    @property
    def reset_mode(self) -> str:
        return self.proc_params["reset_mode"]

    @property
    def num_message_bits(self) -> int:
        """Bits a graded ``s_out`` event needs: ``bit_length(max_burst)``."""
        return message_bits(np.asarray(self.max_burst.init).item())
