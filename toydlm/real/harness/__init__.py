"""toydlm inside lm-evaluation-harness: the `toydlm` model (any bridge sampler, the Monte-Carlo ELBO) and the
mapping from the harness's requests onto the audit's cells and rows, so both give a row the same sample."""
