"""NIR interchange (docs/nir.md): the NIR front end (:func:`read_nir`), its quantization
pass (:mod:`compiler.nir.quantize`), a float simulator of NIR's semantics with a spike
agreement check (:mod:`compiler.nir.simulate`) and the exporter (:mod:`compiler.nir.export`).
Needs the ``nir`` package (imported lazily)."""
from compiler.nir.reader import DEFAULT_DT, read_nir

__all__ = ["DEFAULT_DT", "read_nir"]
