"""Benchmarks and load tests (run on demand, not by the test suite)."""
