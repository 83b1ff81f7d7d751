"""A test-only Lava process whose model raises on a chosen step (for leak tests)."""
