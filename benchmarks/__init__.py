"""Benchmarks: each compares our path with a baseline in the same run (ratios are stable)."""
