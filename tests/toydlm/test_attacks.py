"""Attack names, prompt sets and start canvases."""

import numpy as np
import pytest

from toydlm.attacks import build_prompts, exact_condition, interleave_positions, parse_attack
from toydlm.errors import UserError
from toydlm.grammar import COMPLY, MASK_ID, Grammar, is_harmful


@pytest.fixture(scope="module")
def g():
    return Grammar()


@pytest.mark.parametrize("spec, name", [
    (None, None), ("none", "none"), ("benign", "benign"), ("interleave", "interleave"),
    ("wrapper:roleplay", "wrapper:roleplay"), ("wrapper:none", "none"), ("prefill:3", "prefill:3"),
    ("prefill:16", "prefill:16"), ("inject:refusal@0", "inject:refusal@0"),
    ("inject:comply@15", "inject:comply@15"),
])
def test_parse_valid_names(g, spec, name):
    assert parse_attack(spec, g, steps=16).name == name


def test_parse_records_the_method_and_its_parameters(g):
    a = parse_attack("inject:comply@3", g, steps=16)
    assert (a.method, a.inject, a.step) == ("inject", "comply", 3)
    assert parse_attack("wrapper:none", g).method == "none"  # the plain prompts, whatever the spelling
    assert parse_attack(None).method == "grammar"


@pytest.mark.parametrize("spec", ["", "wrapper:", "wrapper:nope", "prefill:0", "prefill:17", "prefill:x",
                                  "inject:sorry@1", "inject:refusal@16", "inject:refusal", "interleave:3",
                                  "jailbreak"])
def test_parse_errors_list_the_valid_forms(g, spec):
    with pytest.raises(UserError, match="valid forms: none, benign, wrapper:<family>, prefill:<k>"):
        parse_attack(spec, g, steps=16)


@pytest.mark.parametrize("spec, kind, wrapper", [
    ("none", 1, 0), ("wrapper:hypothetical", 1, 2), ("benign", 0, None), ("inject:comply@3", 1, 0),
])
def test_prompt_sets(g, spec, kind, wrapper):
    b = build_prompts(spec, g, 200, seed=0, steps=16)
    k, w, _ = g.parse_prompt(b.prompt_ids)
    assert np.all(k == kind) and np.all(b.topic_kind == kind)
    if wrapper is not None:
        assert np.all(w == wrapper)
    else:
        assert len(np.unique(w)) > 1  # benign prompts keep the wrapper distribution
    assert np.all(b.response == MASK_ID) and not b.pinned.any()


def test_grammar_distribution_without_attack(g):
    b = build_prompts(None, g, 4000, seed=1)
    assert abs(b.topic_kind.mean() - g.config.p_harmful_prompt) < 0.03


def test_prefill_is_a_pinned_compliance_for_the_same_prompt(g):
    k = 6
    b = build_prompts(f"prefill:{k}", g, 300, seed=2)
    assert np.all(b.pinned[:, :k]) and not b.pinned[:, k:].any()
    assert np.all(b.response[:, k:] == MASK_ID)
    ref = g.sample(300, 2, topic_kind=1, wrapper=0, response_class=COMPLY)
    np.testing.assert_array_equal(b.prompt_ids, ref.prompt_ids)
    np.testing.assert_array_equal(b.response[:, :k], ref.response_ids[:, :k])
    # the full compliance is valid for this very prompt and harmful
    assert np.all(g.response_prob(b.prompt_ids, ref.response_ids) > 0)
    assert np.all(is_harmful(g, ref.response_ids))
    assert np.all(b.response[:, :2] == [g.vocab.id("sure"), g.vocab.id("here")])


def test_injection_rows(g):
    b = build_prompts("inject:refusal@4", g, 10, seed=0, steps=16)
    assert np.all(b.force_step == 4) and np.all(b.force_pos == 0)
    assert np.all(b.force_tok == g.vocab.id("sorry"))
    c = build_prompts("inject:comply@0", g, 10, seed=0, steps=16)
    assert np.all(c.force_tok == g.vocab.id("sure"))


@pytest.mark.parametrize("preset", ["default", "sparse_harm", "midway"])
def test_interleave_scatters_harmful_template_tokens_below_the_threshold(preset):
    from toydlm.grammar import load_grammar

    g = load_grammar(preset)
    b = build_prompts("interleave", g, 300, seed=3)
    assert b.pinned.sum(1).min() >= 3  # the opener and at least one content token
    pos = np.flatnonzero(b.pinned[0])
    assert np.all(np.isin(pos, interleave_positions(g))) and np.any(np.diff(pos) > 1)  # masks in between
    assert np.all(b.response[~b.pinned] == MASK_ID)
    assert not np.any(is_harmful(g, b.response))  # committed tokens alone are not judged harmful
    assert np.all(b.response[:, g.config.preamble_len] == g.vocab.id("sure"))


def test_exact_condition(g):
    assert exact_condition(None, g) == g.exact_rates()
    assert exact_condition("wrapper:prefix", g) == g.exact_rates(topic_kind=1, wrapper=3)
    assert exact_condition("prefill:2", g) is None
