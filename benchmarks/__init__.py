"""Benchmarks: measured and printed, never asserted in tests. Run them all with ``python -m benchmarks``."""
