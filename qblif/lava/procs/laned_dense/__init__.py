from qblif.lava.procs.laned_dense.process import LanedDense

__all__ = ["LanedDense"]
