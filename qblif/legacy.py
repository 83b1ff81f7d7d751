"""The old import names ``qblif_lava.*`` and ``compiler.*``, kept for one release.

``import qblif_lava.reference`` or ``from compiler import compile`` still work: the packages
``qblif_lava`` and ``compiler`` are thin aliases that warn once with a
:class:`DeprecationWarning` and hand out the new modules themselves (the same module objects,
so class identity, Lava's model discovery and ``isinstance`` checks are unchanged).
Nothing in :mod:`qblif` imports this module; only the two alias packages do.
"""
from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
import warnings

#: old module name -> new module name
RENAMED = {
    "qblif_lava.reference": "qblif.core.reference",
    "qblif_lava.params": "qblif.core.params",
    "qblif_lava.encoding": "qblif.core.encoding",
    "qblif_lava.errors": "qblif.core.errors",
    "qblif_lava.fileio": "qblif.core.fileio",
    "qblif_lava.interrupts": "qblif.core.interrupts",
    "qblif_lava.data": "qblif.core.data",
    "qblif_lava.netx_check": "qblif.netx.check",
    "qblif_lava.lavadl": "qblif.training.lavadl",
    "qblif_lava.slayer": "qblif.training.slayer",
    "qblif_lava.slayer.block": "qblif.training.slayer.block",
    "qblif_lava.slayer.delay": "qblif.training.slayer.delay",
    "qblif_lava.slayer.hdf5": "qblif.training.slayer.hdf5",
    "qblif_lava.slayer.neuron": "qblif.training.slayer.neuron",
    "qblif_lava.slayer.surrogate": "qblif.training.slayer.surrogate",
    "qblif_lava.training": "qblif.training",
    "qblif_lava.training.__main__": "qblif.cli.train_worker",
    "qblif_lava.training.card": "qblif.training.card",
    "qblif_lava.training.cli": "qblif.cli.train",
    "qblif_lava.training.config": "qblif.training.config",
    "qblif_lava.training.curves": "qblif.training.curves",
    "qblif_lava.training.device": "qblif.training.device",
    "qblif_lava.training.distributed": "qblif.training.distributed",
    "qblif_lava.training.evaluate": "qblif.training.evaluate",
    "qblif_lava.training.loop": "qblif.training.loop",
    "qblif_lava.training.models": "qblif.training.models",
    "qblif_lava.training.train": "qblif.training.train",
    "qblif_lava.viz": "qblif.viz.raster",
    "qblif_lava.lava_session": "qblif.lava.session",
    "qblif_lava.process": "qblif.lava.procs.qblif",
    "qblif_lava.process.process": "qblif.lava.procs.qblif.process",
    "qblif_lava.process.models": "qblif.lava.procs.qblif.models",
    "qblif_lava.fastsyn": "qblif.lava.fastsyn",
    "qblif_lava.fastsyn.baseline": "qblif.lava.fastsyn.baseline",
    "qblif_lava.fastsyn.kernels": "qblif.lava.fastsyn.kernels",
    "qblif_lava.fastsyn.models": "qblif.lava.fastsyn.models",
    "qblif_lava.fastsyn.standin": "qblif.lava.fastsyn.standin",
    "qblif_lava.cli": "qblif.cli.main",
    "qblif_lava.demo": "qblif.cli.demo",
    "compiler.numeric": "qblif.core.numeric",
    "compiler.errors": "qblif.core.compile_errors",
    "compiler.build": "qblif.passes.pipeline",
    "compiler.cli": "qblif.cli.compile",
    "compiler.dataset": "qblif.core.frames",
    "compiler.emit": "qblif.lava.emit",
    "compiler.engine": "qblif.exact",
    "compiler.engine.exact": "qblif.exact.engine",
    "compiler.engine.kinds": "qblif.exact.kinds",
    "compiler.engine.timeline": "qblif.exact.timeline",
    "compiler.engine.native": "qblif.exact.native",
    "compiler.engine.evaluate": "qblif.exact.evaluate",
    "compiler.forward": "qblif.exact.oracle",
    "compiler.ir": "qblif.ir",
    "compiler.reader": "qblif.ir.from_netx",
    "compiler.nir": "qblif.nir",
    "compiler.nir.graph": "qblif.nir.graph",
    "compiler.nir.quantize": "qblif.nir.quantize",
    "compiler.nir.reader": "qblif.ir.from_nir",
    "compiler.nir.simulate": "qblif.nir.simulate",
    "compiler.nir.export": "qblif.export.nir",
    "compiler.passes": "qblif.passes",
    "compiler.passes.declare": "qblif.passes.declare",
    "compiler.passes.lower": "qblif.passes.lower",
    "compiler.passes.messages": "qblif.passes.messages",
    "compiler.passes.plan": "qblif.passes.plan",
    "compiler.passes.quantize": "qblif.passes.quantize",
    "compiler.passes.resources": "qblif.passes.resources",
    "compiler.passes.shapes": "qblif.passes.shapes",
    "compiler.passes.validate": "qblif.passes.validate",
    "compiler.plots": "qblif.cli.compare",
    "compiler.procs": "qblif.lava.procs",
    "compiler.report": "qblif.viz.report",
    "compiler.runtime": "qblif.api",
    "compiler.verify": "qblif.verify",
    "compiler.procs.bias_neuron": "qblif.lava.procs.bias_neuron",
    "compiler.procs.bias_neuron.process": "qblif.lava.procs.bias_neuron.process",
    "compiler.procs.bias_neuron.models": "qblif.lava.procs.bias_neuron.models",
    "compiler.procs.delay_line": "qblif.lava.procs.delay_line",
    "compiler.procs.delay_line.process": "qblif.lava.procs.delay_line.process",
    "compiler.procs.delay_line.models": "qblif.lava.procs.delay_line.models",
    "compiler.procs.graded_lif": "qblif.lava.procs.graded_lif",
    "compiler.procs.graded_lif.process": "qblif.lava.procs.graded_lif.process",
    "compiler.procs.graded_lif.models": "qblif.lava.procs.graded_lif.models",
    "compiler.procs.laned_dense": "qblif.lava.procs.laned_dense",
    "compiler.procs.laned_dense.process": "qblif.lava.procs.laned_dense.process",
    "compiler.procs.laned_dense.models": "qblif.lava.procs.laned_dense.models",
    "compiler.procs.recorder": "qblif.lava.procs.recorder",
    "compiler.procs.recorder.process": "qblif.lava.procs.recorder.process",
    "compiler.procs.recorder.models": "qblif.lava.procs.recorder.models",
    "compiler.procs.source": "qblif.lava.procs.source",
    "compiler.procs.source.process": "qblif.lava.procs.source.process",
    "compiler.procs.source.models": "qblif.lava.procs.source.models",
    "compiler.procs.thermometer": "qblif.lava.procs.thermometer",
    "compiler.procs.thermometer.process": "qblif.lava.procs.thermometer.process",
    "compiler.procs.thermometer.models": "qblif.lava.procs.thermometer.models",
}


class AliasFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Resolves an old module name to its new module (the same object in ``sys.modules``)."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname in RENAMED:
            return importlib.util.spec_from_loader(fullname, self)
        return None

    def create_module(self, spec):
        module = importlib.import_module(RENAMED[spec.name])
        sys.modules[spec.name] = module
        return module

    def exec_module(self, module):
        pass


def install(old_package: str) -> None:
    """Warn that ``old_package`` is deprecated and resolve its submodules to the new ones."""
    warnings.warn(f"'{old_package}' is renamed to 'qblif' (see docs/architecture.md); the old "
                  f"name goes in the next release", DeprecationWarning, stacklevel=3)
    if not any(isinstance(f, AliasFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, AliasFinder())
