"""Evaluation suite and benchmarks."""
