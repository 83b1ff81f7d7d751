"""qblif.export."""
