"""The grammar: sampling, exact rates, validation, judges."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from toydlm.errors import UserError
from toydlm.grammar import (
    COMPLY,
    LATE,
    PRESETS,
    REFUSE,
    Grammar,
    GrammarConfig,
    harm_count,
    is_harmful,
    is_refusal,
    is_valid,
    stepwise_verdicts,
)
from toydlm.grammar.vocab import EOS_ID, MASK_ID

GRAMMARS = {name: Grammar(cfg) for name, cfg in PRESETS.items()}


@given(seed=st.integers(0, 2**31 - 1), preset=st.sampled_from(sorted(PRESETS)))
def test_sampled_pairs_parse_and_judges_agree_with_labels(seed, preset):
    g = GRAMMARS[preset]
    s = g.sample(300, seed)
    assert (is_harmful(g, s.response_ids) == s.harmful).all()
    assert (is_refusal(g, s.response_ids) == s.refusal).all()
    assert is_valid(g, s.prompt_ids, s.response_ids).all()
    kind, w, topic = g.parse_prompt(s.prompt_ids)
    np.testing.assert_array_equal(kind, s.topic_kind)
    np.testing.assert_array_equal(w, s.wrapper)
    np.testing.assert_array_equal(topic, s.topic)
    # responses are a template followed only by EOS padding
    lengths = g.skeletons.length[s.skeleton]
    pos = np.arange(g.response_len)[None]
    assert (s.response_ids[pos >= lengths[:, None]] == EOS_ID).all()
    assert (s.response_ids[pos < lengths[:, None]] != EOS_ID).all()
    assert (s.response_ids != MASK_ID).all()


@pytest.mark.parametrize("preset", ["default", "length_matched"])
def test_empirical_rates_match_exact_within_binomial_bounds(preset):
    g = GRAMMARS[preset]
    n = 60_000
    s = g.sample(n, 123)
    for w in range(g.n_wrappers):
        sel = (s.wrapper == w) & (s.topic_kind == 1)
        exact = g.exact_rates(topic_kind=1, wrapper=w)
        for key, emp in (("refusal_rate", s.refusal[sel].mean()), ("harmful_rate", s.harmful[sel].mean())):
            p = exact[key]
            se = np.sqrt(p * (1 - p) / sel.sum())
            assert abs(emp - p) <= 4 * se + 1e-9, (preset, w, key, emp, p)
    overall = g.exact_rates()
    se = np.sqrt(overall["refusal_rate"] * (1 - overall["refusal_rate"]) / n)
    assert abs(s.refusal.mean() - overall["refusal_rate"]) <= 4 * se


def test_exact_rates_follow_the_config():
    c = GrammarConfig()
    g = Grammar(c)
    for f, leak in enumerate(c.wrapper_leak):
        r = g.exact_rates(topic_kind=1, wrapper=f + 1)
        assert r["harmful_rate"] == pytest.approx(leak * (1 - c.p_late_refusal))
        assert r["refusal_rate"] == pytest.approx(1 - leak * (1 - c.p_late_refusal))
    assert g.exact_rates(topic_kind=0)["refusal_rate"] == pytest.approx(c.p_over_refusal)
    assert g.exact_rates(topic_kind=0)["harmful_rate"] == 0.0


def test_same_seed_same_data_and_different_seed_differs():
    g = GRAMMARS["default"]
    a, b, c = g.sample(500, 7), g.sample(500, 7), g.sample(500, 8)
    np.testing.assert_array_equal(a.tokens, b.tokens)
    assert not np.array_equal(a.tokens, c.tokens)


def test_length_structure_of_presets():
    d, m, f = GRAMMARS["default"], GRAMMARS["length_matched"], GRAMMARS["fixed_length"]
    for g in (d, m):
        s = g.sample(20_000, 3)
        L = g.skeletons.length[s.skeleton]
        ref, comp = L[s.response_class == REFUSE], L[s.response_class == COMPLY]
        if g is d:
            # refusals (4-8 tokens) are never longer than compliances (8-14): the EOS confound
            assert ref.max() <= comp.min() and ref.mean() < comp.mean() - 4
        else:
            assert abs(ref.mean() - comp.mean()) < 0.15 and ref.min() == comp.min() and ref.max() == comp.max()
    assert len(set(f.skeletons.length.tolist())) == 1


def test_midway_preset_hides_the_decision_at_position_zero():
    g = GRAMMARS["midway"]
    s = g.sample(5000, 1)
    first = s.response_ids[:, 0]
    # the first response token is a preamble token for every class
    pre = set(g.vocab.ids("preamble").tolist())
    assert set(first.tolist()) <= pre


def test_sparse_harm_preset_carries_exactly_the_configured_harm_tokens():
    g = GRAMMARS["sparse_harm"]
    s = g.sample(3000, 2, topic_kind=1, response_class=COMPLY)
    np.testing.assert_array_equal(harm_count(g, s.response_ids), 2)


def test_response_prob_is_a_distribution_over_one_prompt():
    """Enumerate all responses of a tiny grammar and check they sum to one."""
    c = GrammarConfig(response_len=8, compliance_min=2, compliance_max=3, topic_lexicon_k=2, refusal_pad_max=1,
                      n_safe_tokens=2, n_refusal_templates=1, late_refusal_harm_tokens=1, n_benign_topics=1,
                      n_harmful_topics=1, benign_lexicon_size=2, harmful_lexicon_size=2)
    g = Grammar(c)
    s = g.sample(1, 0, topic_kind=1, wrapper=2)
    # every distinct response the grammar can make: enumerate by sampling heavily
    many = g.sample(40_000, 1, topic_kind=1, wrapper=2)
    uniq = np.unique(many.response_ids, axis=0)
    probs = g.response_prob(np.repeat(s.prompt_ids, len(uniq), 0), uniq)
    assert probs.sum() == pytest.approx(1.0, abs=1e-9)


def test_incoherent_mixtures_are_judged_as_documented():
    g = GRAMMARS["default"]
    v = g.vocab
    sorry = list(v.refusal_templates[0])
    h = v.ids("harmful_lex")
    mixture = np.array([sorry + [h[0], h[1]] + [EOS_ID] * 10], np.int32)
    assert is_harmful(g, mixture)[0] and is_refusal(g, mixture)[0]
    s = g.sample(1, 0, topic_kind=1)
    assert not is_valid(g, s.prompt_ids, mixture)[0]
    partial = np.array([sorry[:3] + [MASK_ID] + [h[0]] + [EOS_ID] * 11], np.int32)
    assert not is_refusal(g, partial)[0]  # an incomplete template is not a refusal


def test_stepwise_verdicts_ignore_masked_positions():
    g = GRAMMARS["default"]
    h = g.vocab.ids("harmful_lex")
    sure, here = g.vocab.id("sure"), g.vocab.id("here")
    canvas = np.array([[sure, here, h[0]] + [MASK_ID] * 13], np.int32)
    xhat = np.array([[sure, here, h[0], h[1], h[2]] + [EOS_ID] * 11], np.int32)
    v = stepwise_verdicts(g, canvas, xhat)
    assert v["committed_harm_count"][0] == 1 and not v["committed_harm"][0]
    assert v["predicted_harm_count"][0] == 3 and v["predicted_harm"][0]
    assert not v["committed_refusal"][0]


def test_late_refusals_are_refusals_and_not_harmful():
    g = GRAMMARS["default"]
    s = g.sample(2000, 4, topic_kind=1, response_class=LATE)
    assert s.refusal.all() and not s.harmful.any()
    assert (harm_count(g, s.response_ids) == g.config.late_refusal_harm_tokens).all()


@pytest.mark.parametrize(
    "kw, field, value",
    [
        ({"p_over_refusal": 1.5}, "p_over_refusal", 1.5),
        ({"wrapper_leak": (0.3, -0.1, 0.7, 0.6)}, "wrapper_leak[1]", -0.1),
        ({"wrapper_probs": (0.5, 0.2, 0.2, 0.2, 0.2)}, "wrapper_probs", (0.5, 0.2, 0.2, 0.2, 0.2)),
        ({"n_harmful_topics": 0}, "n_harmful_topics", 0),
        ({"response_len": 10}, "response_len", 10),
        ({"length_mode": "short"}, "length_mode", "short"),
        ({"harm_carriers": 1}, "harm_threshold", 2),
        ({"unseen_families": ("nope",)}, "unseen_families", ("nope",)),
        ({"n_benign_topics": 60}, "n_benign_topics", 60),
    ],
)
def test_bad_configs_raise_naming_the_field_and_value(kw, field, value):
    with pytest.raises(UserError) as e:
        GrammarConfig(**kw)
    assert repr(field) in str(e.value)
    assert repr(value) in str(e.value)


def test_toml_loading_and_unknown_fields(tmp_path):
    p = tmp_path / "g.toml"
    p.write_text('name = "mine"\nlength_mode = "matched"\np_over_refusal = 0.1\n')
    c = GrammarConfig.from_toml(p)
    assert c.length_mode == "matched" and c.p_over_refusal == 0.1
    p.write_text("[grammar]\nno_such_field = 1\n")
    with pytest.raises(UserError, match="no_such_field"):
        GrammarConfig.from_toml(p)
    p.write_text("name = \n")
    with pytest.raises(UserError, match="not valid TOML"):
        GrammarConfig.from_toml(p)


def test_config_hash_tracks_every_field():
    a, b = GrammarConfig(), GrammarConfig(p_late_refusal=0.2)
    assert a.config_hash() == GrammarConfig().config_hash()
    assert a.config_hash() != b.config_hash()


def test_vocab_fits_and_is_laid_out_in_groups():
    for g in GRAMMARS.values():
        assert g.vocab_size <= 128
        assert len(set(g.vocab.names)) == g.vocab_size
        groups = sorted(g.vocab.groups.values())
        assert groups[0][0] == 0 and all(a[1] == b[0] for a, b in zip(groups, groups[1:]))
        assert groups[-1][1] == g.vocab_size
