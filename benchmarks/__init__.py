"""Benchmarks: end-to-end time, orchestration overhead, no-op cost, scale and the variant table."""
