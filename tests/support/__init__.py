"""Set-up shared by tests and benchmarks (importable as ``tests.support`` from the repo root)."""
