"""qblif.cli."""
