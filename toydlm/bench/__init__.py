"""Benchmarks behind `toydlm bench <part>`: measured side by side, never timed tests."""
