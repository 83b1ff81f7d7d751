"""Thermometer: splits burst counts n into M one-bit lanes (lane j fires when n > j)."""
from __future__ import annotations

from lava.magma.core.process.ports.ports import InPort, OutPort
from lava.magma.core.process.process import AbstractProcess

from qblif.lava.procs.source.process import lane_shape


class Thermometer(AbstractProcess):
    """``s_in`` counts of ``shape`` -> ``s_out`` lanes of ``lane_shape(shape, lanes)``
    (index ``c*M + j`` on the last axis), in the same timestep (no delay)."""

    def __init__(self, *, shape, lanes: int, name=None):
        shape = tuple(shape)
        super().__init__(shape=shape, lanes=int(lanes), name=name)
        self.s_in = InPort(shape=shape)
        self.s_out = OutPort(shape=lane_shape(shape, int(lanes)))
