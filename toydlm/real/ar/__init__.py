"""Real AR checkpoints: resumable sampling cells, the length test, recovery curves (experiments/real_ar.py)."""
