"""The pass declaration decorator (its own module so the passes can import it).

A pass states, as names ``graph.<key>``, ``layer.<field>``, ``edge.<key>``:

- ``requires``: what must be present before it runs (``graph.*`` / ``edge.*`` keys);
- ``reads``: everything it may read (``layer.*`` reads are traced while it runs);
- ``writes``: everything it may add or change (anything else changed is an error: a pass
  with no writes changes nothing);
- ``ensures``: what is present after it.

:func:`qblif.passes.run_passes` checks all four after each pass (torch.fx-style contracts).
"""
from __future__ import annotations


def declare(reads=(), writes=(), requires=None, ensures=None):
    """Mark a pass with its contract (module docstring). ``requires`` defaults to the
    ``graph.*``/``edge.*`` names among ``reads``, ``ensures`` to the ``graph.*`` names among
    ``writes``."""
    def wrap(fn):
        fn.reads, fn.writes = tuple(reads), tuple(writes)
        fn.requires = tuple(requires if requires is not None else
                            [r for r in reads if r.startswith(("graph.", "edge."))])
        fn.ensures = tuple(ensures if ensures is not None else
                           [w for w in writes if w.startswith("graph.")])
        return fn
    return wrap
