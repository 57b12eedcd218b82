"""The sampler layer knows only the Denoiser protocol, and new selection rules plug in by name."""

import subprocess
import sys
import textwrap

import jax.numpy as jnp
import numpy as np
import pytest

from toydlm.errors import UserError
from toydlm.grammar import Grammar, grammar_oracle
from toydlm.samplers import SamplerConfig, register_selection_rule, sampler_names, selection_names
from toydlm.sampling import sample

ABOVE = ("toydlm.grammar", "toydlm.attacks", "toydlm.trace", "toydlm.sampling", "toydlm.model", "toydlm.train",
         "toydlm.experiment", "toydlm.bridge")


def test_samplers_import_nothing_above_the_denoiser_protocol():
    """Import every module of `toydlm.samplers` in a fresh interpreter; none of the upper layers loads."""
    child = textwrap.dedent(f"""
        import importlib, pkgutil, sys
        import toydlm.samplers
        names = [m.name for m in pkgutil.iter_modules(toydlm.samplers.__path__, "toydlm.samplers.")]
        for name in names:
            importlib.import_module(name)
        loaded = sorted(m for m in sys.modules if m.startswith({ABOVE!r}))
        print(len(names), loaded)
    """)
    p = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr[-3000:]
    n, loaded = p.stdout.strip().split(" ", 1)
    assert int(n) >= 7 and loaded == "[]", p.stdout


def _rightmost(x):
    return jnp.asarray(x.position, jnp.float32)


def test_a_registered_selection_rule_samples_by_its_score():
    """"Rightmost masked position first" with one commit per step decodes right to left."""
    name = "test_rightmost_first"
    register_selection_rule(name, _rightmost)
    register_selection_rule(name, _rightmost)  # the same function again: a no-op
    assert name in selection_names() and name in sampler_names()
    g = Grammar()
    tr = sample(grammar_oracle(g), g, SamplerConfig(name), n=8, seed=0)
    L = g.response_len
    order = tr["commit_step"]  # [B, L] the step each position was committed
    np.testing.assert_array_equal(order, np.broadcast_to(np.arange(L)[::-1], order.shape))
    assert tr.meta["sampler"]["name"] == name and not tr["remasked"].any()
    blocks = sample(grammar_oracle(g), g, SamplerConfig(name, block_length=L // 2), n=8, seed=0)
    first = blocks["commit_step"][:, : L // 2]  # blocks stay left to right; right to left inside each
    np.testing.assert_array_equal(first, np.broadcast_to(np.arange(L // 2)[::-1], first.shape))


@pytest.mark.parametrize("name, score, match", [
    ("low_confidence", _rightmost, "built-in"),
    ("remdm", _rightmost, "built-in"),
    ("", _rightmost, "non-empty"),
    ("test_not_callable", 3, "callable"),
])
def test_bad_registrations_are_user_errors(name, score, match):
    with pytest.raises(UserError, match=match):
        register_selection_rule(name, score)


def test_a_name_cannot_be_taken_by_another_score():
    register_selection_rule("test_taken", _rightmost)
    with pytest.raises(UserError, match="already registered"):
        register_selection_rule("test_taken", lambda x: x.confidence)


def test_unknown_sampler_is_a_user_error():
    with pytest.raises(UserError, match="unknown sampler 'nope'"):
        SamplerConfig("nope").resolved(16)
