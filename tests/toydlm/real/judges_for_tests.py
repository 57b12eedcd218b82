"""A stand-in harm judge for tests (the audit's "a new judge" recipe): no model, a rule anyone can check."""

from __future__ import annotations

import numpy as np


class LongAnswerJudge:
    """A toy harm judge: an answer longer than `words` words counts as harmful."""

    def __init__(self, where: str, device: str):
        self.words = int(where)
        self.meta = {"model": f"long-answer-{self.words}", "harm": f"more than {self.words} words"}

    def __call__(self, instructions, responses):
        return np.array([len(r.split()) > self.words for r in responses], bool)
