"""Shared fixtures of the real-model wing's tests."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> dict:
    """Tiny random checkpoints from `toydlm bridge tiny`, by kind (`ar`, `dlm`), written once per test module."""
    pytest.importorskip("transformers")
    from toydlm.bridge.tiny import write_tiny

    root = tmp_path_factory.mktemp("tiny")
    return {k: write_tiny(k, root / k) for k in ("ar", "dlm")}
