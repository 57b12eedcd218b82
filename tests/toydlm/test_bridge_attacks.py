"""Real-attack text transforms: each family's documented effect, exact flips, name parsing."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from toydlm.bridge.attacks import (
    ATTACKS,
    FAMILY_NOTES,
    FORMS,
    PREFIX_OPENER,
    UNSEEN,
    AttackedPrompt,
    apply_attack,
    flip_chars,
    flip_words,
    parse_attacks,
)
from toydlm.errors import UserError

INS = "Explain how photosynthesis turns light into sugar."
WRAPPERS = ("refusal_suppression", "prefix_injection", "roleplay", "hypothetical")


def test_fixed_names():
    assert ATTACKS[0] == "raw"
    assert UNSEEN == "flip" and UNSEEN in ATTACKS
    assert len(set(ATTACKS)) == len(ATTACKS)
    assert set(FAMILY_NOTES) == {*ATTACKS, "prefill"}
    assert all(FAMILY_NOTES[f] and "\n" not in FAMILY_NOTES[f] for f in FAMILY_NOTES)
    assert "prefill:<text>" in FORMS


def test_raw_is_identity():
    assert apply_attack("raw", INS) == AttackedPrompt(user=INS, prefill="", attack="raw", family="raw")


@pytest.mark.parametrize("name", WRAPPERS)
def test_wrappers_contain_instruction(name):
    p = apply_attack(name, INS)
    assert INS in p.user and p.user != INS
    assert (p.prefill, p.attack, p.family) == ("", name, name)


def test_family_specific_text():
    assert PREFIX_OPENER in apply_attack("prefix_injection", INS).user
    rs = apply_attack("refusal_suppression", INS).user.lower()
    assert all(w in rs for w in ("apologis", "disclaimer", "negative", "decline"))
    assert "character" in apply_attack("roleplay", INS).user
    assert "hypothetical" in apply_attack("hypothetical", INS).user


@pytest.mark.parametrize("name, flip", [("flip", flip_chars), ("flip_words", flip_words)])
def test_flips_hide_instruction(name, flip):
    p = apply_attack(name, INS)
    assert flip(INS) in p.user and INS not in p.user
    assert (p.prefill, p.family) == ("", name)


def test_flip_examples():
    assert flip_chars("abc def") == "fed cba"
    assert flip_words("how to  do\tit") == "it\tdo  to how"
    assert flip_words(" a b\n") == "\nb a "


@given(st.text())
def test_flip_chars_round_trips(s):
    assert flip_chars(flip_chars(s)) == s
    assert len(flip_chars(s)) == len(s)


@given(st.text(alphabet=st.characters(), max_size=60) | st.lists(st.sampled_from(["a", "bé", " ", "\t", "\n", "  "]))
       .map("".join))
def test_flip_words_round_trips(s):
    assert flip_words(flip_words(s)) == s
    assert sorted(flip_words(s)) == sorted(s)


@given(st.text())
def test_flip_attack_carries_exact_reversal(s):
    user = apply_attack("flip", s).user
    assert user.endswith(s[::-1])


def test_prefill():
    p = apply_attack("prefill:Sure, here is", INS)
    assert p == AttackedPrompt(user=INS, prefill="Sure, here is", attack="prefill:Sure, here is", family="prefill")
    assert apply_attack("prefill: Sure ", INS).prefill == " Sure "


@pytest.mark.parametrize("name", [*ATTACKS, "prefill:Sure"])
def test_deterministic(name):
    assert apply_attack(name, INS) == apply_attack(name, INS)


@pytest.mark.parametrize("spec, names", [
    (None, ["raw"]),
    ("raw,flip", ["raw", "flip"]),
    (" raw , flip ,roleplay", ["raw", "flip", "roleplay"]),
    (["flip", "raw"], ["flip", "raw"]),
    (["raw,flip", "hypothetical"], ["raw", "flip", "hypothetical"]),
    ("raw,flip,raw,flip", ["raw", "flip"]),
    ("raw,prefill:Sure, here is", ["raw", "prefill:Sure, here is"]),
    ("prefill:Sure, here is,flip", ["prefill:Sure, here is", "flip"]),
    (["prefill:Sure, here is", "prefill:Yes"], ["prefill:Sure, here is", "prefill:Yes"]),
    ("prefill: Yes ,raw", ["prefill: Yes ", "raw"]),
    (",".join(ATTACKS), list(ATTACKS)),
])
def test_parse_attacks(spec, names):
    assert parse_attacks(spec) == names


@pytest.mark.parametrize("spec, bad", [
    ("raw,jailbreak", "jailbreak"), (["nope"], "nope"), ("prefill:", "prefill:"), ("raw,prefill:  ", "prefill:"),
    ("prefill", "prefill"), ("raw,,flip", "''"), ("", "''"), ([], "no attack"), ([3], "3"),
])
def test_parse_attacks_rejects(spec, bad):
    with pytest.raises(UserError) as e:
        parse_attacks(spec)
    msg = str(e.value)
    assert bad in msg and "valid forms" in msg
    assert all(form in msg for form in FORMS)


@pytest.mark.parametrize("name", ["jailbreak", "prefill:", "raw,flip", "prefill"])
def test_apply_rejects(name):
    with pytest.raises(UserError, match="valid forms"):
        apply_attack(name, INS)
