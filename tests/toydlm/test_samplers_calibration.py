"""Calibration against the grammar's exact rates with the exact (oracle) denoiser, temperature 1.

With exact conditionals, committing one token at a time in any value-independent order
samples the true distribution, so ar_order, random with one token per step, and MDLM with
many steps must reproduce `Grammar.exact_rates` within binomial error (a sampler bug shows up
here). The power check shows the same criterion rejects low-confidence decoding, which is
biased by design (EOS-first commitment, docs/prior-evidence.md).
"""

import math

import numpy as np
import pytest

from toydlm.grammar import Grammar, grammar_oracle
from toydlm.samplers import SamplerConfig
from toydlm.sampling import outcome_rates, sample

N = 1200
Z = 4.0  # standard errors


@pytest.fixture(scope="module")
def setup():
    g = Grammar()
    return g, grammar_oracle(g), g.exact_rates()


_CACHE: dict = {}


def _trace(setup, cfg):
    if cfg not in _CACHE:
        g, oracle, _ = setup
        # chunks of 48 rows reuse the compilations of the driver tests (rows do not depend on chunking)
        _CACHE[cfg] = sample(oracle, g, cfg, n=N, seed=11, batch_size=48)
    return _CACHE[cfg]


MDLM = SamplerConfig("mdlm", steps=64)


def _gaps(rates: dict, exact: dict) -> dict[str, float]:
    """|measured - exact| in units of the exact binomial standard error."""
    out = {}
    for key, ex in (("asr", exact["harmful_rate"]), ("refusal_rate", exact["refusal_rate"])):
        se = math.sqrt(ex * (1 - ex) / rates["n"])
        out[key] = abs(rates[key] - ex) / se
    return out


@pytest.mark.parametrize("cfg", [
    SamplerConfig("ar_order"),
    SamplerConfig("ar"),
    SamplerConfig("random"),  # steps = L: one token per step
    MDLM,
], ids=lambda c: f"{c.name}-{c.steps}")
def test_exact_rates_reproduced(setup, cfg):
    g, oracle, exact = setup
    tr = _trace(setup, cfg)
    r = outcome_rates(tr, g)
    gaps = _gaps(r, exact)
    assert max(gaps.values()) < Z, (cfg.name, r["asr"], r["refusal_rate"], exact, gaps)
    assert r["valid_rate"] > 0.97  # parallel commits are rare here; one-at-a-time is always valid
    if cfg.name != "mdlm":
        assert r["valid_rate"] == 1.0


def test_calibration_criterion_rejects_low_confidence(setup):
    g, oracle, exact = setup
    tr = _trace(setup, SamplerConfig("low_confidence"))
    r = outcome_rates(tr, g)
    assert max(_gaps(r, exact).values()) > 3 * Z  # the EOS-first length collapse
    assert r["eos_first_share"] > 0.6 and r["mean_length"] < 8


def test_mdlm_decodes_positions_uniformly_over_steps(setup):
    """Linear alpha on a uniform grid: P(position first decoded at step k) = 1/T for every k."""
    T = MDLM.steps
    tr = _trace(setup, MDLM)
    frac = tr["committed"].sum((1, 2)) / tr["committed"].sum()
    se = math.sqrt((1 / T) * (1 - 1 / T) / tr["committed"].sum())
    assert np.all(np.abs(frac - 1 / T) < 5 * se), frac
