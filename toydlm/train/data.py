"""A seeded, stateless data stream: the batch at step k depends only on (seed, k).

Fresh grammar samples every step (the grammar is an infinite source), so resuming at step k
reproduces exactly the batches a straight run would have seen. The held-out stream uses a
separate tag, so evaluation never shares draws with training.
"""

from __future__ import annotations

import numpy as np

TRAIN_TAG, EVAL_TAG = 0, 1


def stream_seed(seed: int, step: int, tag: int = TRAIN_TAG) -> int:
    """A 32-bit grammar seed for (run seed, step, stream), decorrelated by SeedSequence."""
    return int(np.random.SeedSequence([tag, seed, step]).generate_state(1)[0])


def batch_at(grammar, seed: int, step: int, batch: int) -> np.ndarray:
    """Training tokens `[batch, P + L]` int32 for this step."""
    return grammar.sample(batch, stream_seed(seed, step)).tokens.astype(np.int32)


def eval_batch(grammar, seed: int, batch: int) -> np.ndarray:
    """The fixed held-out batch `[batch, P + L]` int32 (a corpus's own evaluation rows when it has them)."""
    if hasattr(grammar, "sample_held_out"):
        return grammar.sample_held_out(batch, stream_seed(seed, 0, EVAL_TAG)).tokens.astype(np.int32)
    return grammar.sample(batch, stream_seed(seed, 0, EVAL_TAG)).tokens.astype(np.int32)
