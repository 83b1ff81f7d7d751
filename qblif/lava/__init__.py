"""qblif.lava."""
