"""qblif.viz."""
