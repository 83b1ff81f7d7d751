"""lava-dl's SLAYER, imported quietly.

Importing ``lava.lib.dl.slayer`` prints a Prophesee-toolbox warning and torch's
"No CUDA runtime" note, neither of which concerns this project. Modules that
use lava-dl import it through here first (``from qblif.training.lavadl import slayer``)
so the CLI output stays readable. Imports torch: never import from Lava models.
"""
import contextlib
import io

with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
    import lava.lib.dl.slayer as slayer  # noqa: E402

__all__ = ["slayer"]
