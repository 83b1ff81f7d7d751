"""CPU process models of :class:`QBLIF`.

``fixed_pt`` / ``bit_accurate_loihi``: Loihi integer semantics, equal to
:func:`qblif.core.reference.step` (which mirrors Lava's own
``AbstractPyLifModelFixed.subthr_dynamics``: 24-bit wrap of u, clip of v, decays in
1/4096), computed lean in int32 (:class:`PyQBLIFModelFixed`); the previous model, built
on Lava's ``subthr_dynamics``, is :class:`qblif.lava.fastsyn.baseline.PyQBLIFModelFixedLegacy`
(outside this package, so that Lava's model discovery never picks it). No torch may be
imported here (Lava forks).

``floating_pt``: spec section 2, with the same integer parameters read in real
units: decays ``(du + 1) / 4096`` and ``dv / 4096``, states in weight units
(the fixed-point state divided by 64), threshold ``vth``.
"""
import numpy as np
from lava.magma.core.decorator import implements, requires, tag
from lava.magma.core.model.py.model import PyLoihiProcessModel
from lava.magma.core.model.py.ports import PyInPort, PyOutPort
from lava.magma.core.model.py.type import LavaPyType
from lava.magma.core.resources import CPU
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol
from lava.proc.lif.models import AbstractPyLifModelFixed

from qblif.core import reference
from qblif.lava.procs.qblif.process import QBLIF
from qblif.lava.procs.recorder.process import open_rows


class PeriodicReset:
    """Zero u and v at the start of scheduled timesteps (as Lava's ``LIFReset``)."""

    def _init_reset(self, proc_params):
        self.reset_mode = proc_params["reset_mode"]
        self.reset_interval = proc_params["reset_interval"]
        self.reset_offset = (proc_params["reset_offset"] % self.reset_interval
                             if self.reset_interval else 0)

    def _maybe_reset(self):
        if self.reset_interval and self.time_step % self.reset_interval == self.reset_offset:
            self.u[:] = 0
            self.v[:] = 0


class _QBLIFFixedTypes(AbstractPyLifModelFixed):
    """Ports and Vars of the QB-LIF fixed-point models (Lava's LIF types, wider ports)."""

    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32, precision=24)
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=8)
    vth: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=17)
    max_burst: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=8)


@implements(proc=QBLIF, protocol=LoihiProtocol)
@requires(CPU)
@tag("bit_accurate_loihi", "fixed_pt")
class PyQBLIFModelFixed(PeriodicReset, _QBLIFFixedTypes):
    """Bit-accurate QB-LIF, lean: the arithmetic of :func:`reference.step` in int32.

    * Decay ``rtz(x * f / 4096)`` (``f = 4095 - du`` for u, ``4096 - dv`` for v) as
      ``trunc(x * (f / 4096))`` in float64: ``f / 4096`` is exact (a power-of-two
      divisor), ``|x * f| < 2**44`` is exact, so the product is exact and ``trunc`` rounds
      toward zero like the reference. ``f = 0`` (du = 4095) and ``f = 4096`` (dv = 0) skip it.
    * ``a << 6`` and the sums in int32, wrapping as Lava's int32 arithmetic does; the single
      24-bit wrap of u and the clip of v only when a min/max check finds a value out of range.
    * The burst ``n = #{k in 1..K : v > k * theta}``: with one threshold for the whole
      population, ``clip((v - 1) // theta, 0, K)`` (numpy divides by a scalar without a
      hardware divide); with per-neuron thresholds, K compares (K capped at the multiples of
      theta below the largest v) up to 8, else :func:`reference.burst_count`.
    * Threshold, bias and decays are prepared once and again after any ``Var.set()``.
    """

    def __init__(self, proc_params):
        super().__init__(proc_params)
        self._init_reset(proc_params)
        self._ready = False
        self._uv_rows = None      # (u rows, v rows) with QBLIF.record_uv_into

    def _record_uv(self, u: np.ndarray, v: np.ndarray) -> None:
        """Row ``t - 1`` of the u and v files of :meth:`QBLIF.record_uv_into`."""
        if self._uv_rows is None:
            u_path, v_path, steps = self.proc_params["record_uv"]
            self._uv_rows = open_rows((u_path, v_path), steps, u.size)
        t = self.time_step - 1
        if t < self._uv_rows[0].shape[0]:
            self._uv_rows[0][t] = u.reshape(-1)
            self._uv_rows[1][t] = v.reshape(-1)

    def on_var_update(self):
        """Called by Lava after any ``Var.set()``: prepare threshold, bias, decays again."""
        self._ready = False

    @staticmethod
    def _uniform(x: np.ndarray):
        """A Python int if every element of ``x`` is equal, else ``x`` itself."""
        flat = np.ravel(x)
        return int(flat[0]) if flat.size and (flat == flat[0]).all() else x

    def _prepare(self):
        r = reference
        self.fu = r.DECAY_UNITY - (int(np.ravel(self.du)[0]) + 1)
        self.fv = r.DECAY_UNITY - int(np.ravel(self.dv)[0])
        self.k = int(np.ravel(self.max_burst)[0])
        bias = self._uniform(r.effective_bias(self.bias_mant, self.bias_exp))
        self.bias = bias if np.ndim(bias) else (bias or None)
        theta = np.left_shift(np.asarray(self.vth, np.int64), r.VTH_SHIFT)
        self.theta = self._uniform(theta)
        # multiples k * theta that a clipped v (<= V_MAX) can exceed
        k_eff = min(self.k, (r.V_MAX - 1) // max(int(theta.min()), 1))
        self.thresholds = (None if np.ndim(self.theta) == 0 or k_eff > 8 else
                           [(k * theta).astype(np.int32) for k in range(1, k_eff + 1)])
        self.theta32 = np.asarray(theta, np.int32)
        self._ready = True

    @staticmethod
    def _decay(x: np.ndarray, f: int) -> np.ndarray:
        """``rtz(x * f >> 12)`` for ``0 < f < 4096`` as int32 (exact, see the class docstring)."""
        return np.trunc(x * (f / reference.DECAY_UNITY)).astype(np.int32)

    def _burst(self, v: np.ndarray) -> np.ndarray:
        if np.ndim(self.theta) == 0:
            n = np.subtract(v, 1)
            np.floor_divide(n, self.theta, out=n)
            return np.clip(n, 0, self.k, out=n)
        if self.thresholds is None:
            return reference.burst_count(v, self.theta32, self.k)
        n = np.zeros(v.shape, np.int8)              # K <= 8 here: int8 counts suffice
        for thr in self.thresholds:
            n += np.greater(v, thr).view(np.int8)
        return n.astype(np.int32)

    def run_spk(self):
        r = reference
        a = self.a_in.recv()
        self._maybe_reset()
        if not self._ready:
            self._prepare()
        u, v = self.u, self.v                  # updated in place (int32 Vars)
        decayed = self._decay(u, self.fu) if self.fu else None
        np.left_shift(a, r.ACT_SHIFT, out=u, casting="unsafe")   # int32 wrap, as Lava's
        if decayed is not None:
            u += decayed
        if u.size and (u.max() > r.MAX_UV or u.min() <= -r.MAX_UV):
            u[:] = r.wrap24(u)
        if self.fv != r.DECAY_UNITY:
            v[:] = self._decay(v, self.fv)
        v += u
        if self.bias is not None:
            v += self.bias
        if v.size and (v.max() > r.V_MAX or v.min() < r.V_MIN):
            np.clip(v, r.V_MIN, r.V_MAX, out=v)
        n = self._burst(v)
        if self.reset_mode == "subtract":
            v -= n * (self.theta if np.ndim(self.theta) == 0 else self.theta32)
        else:
            v[n > 0] = 0
        if self.proc_params.get("record_uv") is not None:
            self._record_uv(u, v)
        self.s_out.send(n)


@implements(proc=QBLIF, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class PyQBLIFModelFloat(PeriodicReset, PyLoihiProcessModel):
    """Floating-point QB-LIF (spec section 2): for exploring, not for hardware claims."""

    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
    u: np.ndarray = LavaPyType(np.ndarray, float)
    v: np.ndarray = LavaPyType(np.ndarray, float)
    du: float = LavaPyType(float, float)
    dv: float = LavaPyType(float, float)
    vth: np.ndarray = LavaPyType(np.ndarray, float)
    bias_mant: np.ndarray = LavaPyType(np.ndarray, float)
    bias_exp: np.ndarray = LavaPyType(np.ndarray, float)
    max_burst: np.ndarray = LavaPyType(np.ndarray, float)

    def __init__(self, proc_params):
        super().__init__(proc_params)
        self._init_reset(proc_params)

    def run_spk(self):
        a = self.a_in.recv()
        self._maybe_reset()
        scale = 2.0 ** reference.VTH_SHIFT
        bias = self.bias_mant * 2.0 ** self.bias_exp / scale
        self.u[:] = self.u * (1 - (self.du + 1) / reference.DECAY_UNITY) + a
        self.v[:] = self.v * (1 - self.dv / reference.DECAY_UNITY) + self.u + bias
        n = np.clip(np.ceil(self.v / self.vth) - 1, 0, self.max_burst[0])
        if self.reset_mode == "subtract":
            self.v[:] -= n * self.vth
        else:
            self.v[n > 0] = 0
        self.s_out.send(n)
