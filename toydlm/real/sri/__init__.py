"""SRI on real AR checkpoints: per-step states from the KV-cached bridge, cached anchors, signals and IRR."""
