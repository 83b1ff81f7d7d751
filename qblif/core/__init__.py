"""qblif.core."""
