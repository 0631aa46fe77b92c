"""Benchmarks that print their figures; never run as tests. `make bench` runs them all."""
