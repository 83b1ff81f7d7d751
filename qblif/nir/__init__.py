"""NIR interchange, the file side (docs/nir.md): reading and checking a NIR graph
(:mod:`qblif.nir.graph`, with fused linear ops and recurrent edges), the float linear ops
(:mod:`qblif.nir.linear`), its fixed-point quantization (:mod:`qblif.nir.quantize`) and a
float simulator of NIR's semantics (:mod:`qblif.nir.simulate`). The IR is built from it by
:func:`qblif.ir.from_nir.read_nir`; the exporter is :mod:`qblif.export.nir`.
Needs the ``nir`` package (imported lazily)."""
