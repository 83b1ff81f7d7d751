"""qblif.netx."""
