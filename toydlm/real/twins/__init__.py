"""Real-text twins: AR and MDLM students of a real refusing chat model, and the sampler swap on real text."""
