"""Training QB-LIF / CUBA networks with lava-dl SLAYER (imports torch)."""
import qblif_lava.lavadl  # noqa: F401,E402  (first: silences lava-dl's import-time prints)
