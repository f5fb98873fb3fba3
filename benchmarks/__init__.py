"""Benchmarks: each module runs on its own (`python -m benchmarks.<name>`) and prints its figures."""
