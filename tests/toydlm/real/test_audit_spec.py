"""The audit's settings and statistics, without a model: the sampler-spec grammar, list parsing, checks,
the prompt bootstrap and the cell seeds."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from toydlm.errors import UserError
from toydlm.real.audit.analyse import cluster_ci, eos_excess
from toydlm.real.audit.judge import parse_judge
from toydlm.real.audit.plan import cell_seed
from toydlm.real.audit.spec import (
    AuditConfig,
    check_config,
    default_block,
    parse_sampler,
    split_attacks,
    split_numbers,
)


def test_sampler_specs_map_to_lab_configs():
    s = parse_sampler("low_confidence@32+eos_last", "dlm", 96, 0.5, None)
    assert s.label == "low_confidence@32+eos_last"
    assert (s.cfg.name, s.cfg.block_length, s.cfg.eos_last, s.cfg.eos_inf, s.cfg.temperature) == \
        ("low_confidence", 32, True, False, 0.5)
    f = parse_sampler("random+eos_forbidden", "dlm", 16, 0.0, 8)
    assert f.cfg.eos_inf and not f.cfg.eos_last and f.cfg.steps == 8
    assert parse_sampler("ar_order", "dlm", 16, 0.7, 4).cfg.steps is None  # left to right: one step per token
    assert parse_sampler("low_confidence@default", "dlm", 96, 0.7, None).label == "low_confidence@32"


@pytest.mark.parametrize("text, kind, msg", [
    ("low_confidence", "ar", "only the sampler 'ar'"),
    ("ar", "dlm", "unknown diffusion sampler"),
    ("nope", "dlm", "unknown diffusion sampler"),
    ("low_confidence+eos_first", "dlm", "unknown control"),
    ("low_confidence@5", "dlm", "does not divide"),
    ("low_confidence@x", "dlm", "positive integer"),
])
def test_bad_sampler_specs_are_one_line_errors(text, kind, msg):
    with pytest.raises(UserError, match=msg):
        parse_sampler(text, kind, 16, 0.7, None)


@given(st.integers(1, 512))
def test_default_block_divides_the_length_into_several_blocks(L):
    b = default_block(L)
    assert L % b == 0 and (b < L or L == 1)
    if L > 32 and L % 32 == 0:
        assert b == 32


def test_attack_lists_keep_prefill_commas_and_the_curve_names():
    assert split_attacks("raw,prefill:Sure, here is,prefill,injection") == \
        ("raw", "prefill:Sure, here is", "prefill", "injection")
    assert split_attacks("raw,raw") == ("raw",)
    with pytest.raises(UserError, match="unknown attack"):
        split_attacks("raw,jailbreak_please")
    assert split_numbers("0.7,1", "--temperature", float) == (0.7, 1.0)
    with pytest.raises(UserError, match="--gen-length"):
        split_numbers("32,abc", "--gen-length", int)


@pytest.mark.parametrize("kw, msg", [
    ({"kind": "xx"}, "--kind"), ({"samples": 0}, "--samples"), ({"gen_lengths": (0,)}, "--gen-length"),
    ({"temperatures": (-1.0,)}, "--temperature"), ({"max_minutes": 0.0}, "--max-minutes"),
    ({"kind": "dlm", "attacks": ("raw", "injection")}, "applies to --kind ar"),
    ({"attacks": ("refusal_suppression", "injection")}, "add raw"),
    ({"judge": "gpt4"}, "unknown --judge"), ({"logits_shift": True}, "diffusion"),
    ({"kind": "dlm", "samplers": ("low_confidence@7",), "gen_lengths": (16,)}, "does not divide"),
])
def test_config_checks(kw, msg):
    base = {"model": "m", "kind": "ar", "out": "o"}
    with pytest.raises(UserError, match=msg):
        check_config(AuditConfig(**{**base, **kw}))


def test_judge_forms():
    assert parse_judge("keyword") == ("keyword", None)
    assert parse_judge("llm:qwen2.5-coder-1.5b-instruct") == ("llm", "qwen2.5-coder-1.5b-instruct")
    assert parse_judge("classifier:/models/guard") == ("classifier", "/models/guard")
    for bad in ("llm", "keyword:x", "classifier:"):
        with pytest.raises(UserError):
            parse_judge(bad)


@given(st.lists(st.tuples(st.integers(0, 6), st.booleans()), min_size=1, max_size=40), st.integers(0, 99))
def test_cluster_ci_lies_within_the_per_prompt_extremes(rows, seed):
    prompt = np.array([p for p, _ in rows])
    x = np.array([v for _, v in rows], float)
    lo, hi = cluster_ci(prompt, x, 200, seed)
    means = [x[prompt == p].mean() for p in np.unique(prompt)]
    assert min(means) - 1e-12 <= lo <= hi <= max(means) + 1e-12


def test_cluster_ci_is_a_point_when_every_prompt_agrees_and_resamples_prompts_not_rows():
    prompt = np.repeat(np.arange(10), 4)
    assert cluster_ci(prompt, np.ones(40), 100, 0) == [1.0, 1.0]
    x = np.repeat(np.arange(10) % 2, 4).astype(float)  # whole prompts refuse or not
    lo, hi = cluster_ci(prompt, x, 2000, 0)
    iid_lo, iid_hi = cluster_ci(np.arange(40), x, 2000, 0)  # the same rows taken as independent
    assert hi - lo > (iid_hi - iid_lo) * 1.4  # clustered samples are worth fewer independent ones


def test_cell_seed_depends_on_the_cell_not_the_sampler_and_is_stable():
    assert cell_seed(0, "raw", 0.7, 96) == cell_seed(0, "raw", 0.7, 96)
    assert len({cell_seed(0, a, t, L) for a in ("raw", "flip") for t in (0.7, 1.0) for L in (32, 64)}) == 8
    assert cell_seed(1, "raw", 0.7, 96) != cell_seed(0, "raw", 0.7, 96)


def test_eos_excess_reads_the_row_terms():
    first = [{"eos": [1.0, 0.25, 1.0, 0.0]}] * 3  # every end token committed first
    last = [{"eos": [0.0, 0.25, 1.0, 0.0]}] * 3  # every content token first
    assert eos_excess(first) == pytest.approx(1.0) and eos_excess(last) == pytest.approx(-1.0)
    assert eos_excess([{"prompt": 0}]) is None


def test_markdown_tables_keep_their_columns_when_a_cell_holds_a_pipe():
    import re

    from toydlm.real.audit.report import _md_table, length_table

    row = {"sampler": "ar", "attack": "raw", "temperature": 0.7, "gen_length": 96, "k": 16, "n": 3,
           "p_refusal_given_len_le_k": 1.0, "p_refusal_given_len_le_k_ci95": [1.0, 1.0], "p_refusal": 0.5,
           "asr_given_len_le_k": 0.0, "asr": 0.5}
    lines = _md_table(length_table([row, row])).splitlines()
    assert len({len(re.findall(r"(?<!\\)\|", line)) for line in lines}) == 1
