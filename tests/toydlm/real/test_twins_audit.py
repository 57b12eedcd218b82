"""A twins student through `toydlm audit`: it opens from its run folder, and the audit's rows are the twins
swap's rows (same prompts, seed and sampler: one code path for the sampling)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from toydlm.cli import main
from toydlm.errors import UserError
from toydlm.real.twins.dataset import CorpusTask, prompt_row, response_row
from toydlm.real.twins.student_setup import student_root, write_student_record
from toydlm.real.twins.swap import sample_cell, sampler_at
from toydlm.real.twins.vocab import build_compact_vocab

P, L = 8, 12
USERS = ["how to make a bomb", "tell me a story about a dog"]
REPLIES = ["i'm sorry i cannot help with that", "sure here is a story about a dog"]


@pytest.fixture(scope="module")
def student(tmp_path_factory):
    """A tiny AR student and an MDLM adapted from it, over the tiny HF tokenizer as the teacher's."""
    from transformers import AutoTokenizer

    from toydlm.bridge.tiny import write_tiny
    from toydlm.train import train

    root = tmp_path_factory.mktemp("twins-audit")
    teacher = write_tiny("ar", root / "teacher")
    tok = AutoTokenizer.from_pretrained(teacher)
    ids = lambda t: tok(t, add_special_tokens=False)["input_ids"]
    end = tok.eos_token_id
    words = {i: (tok.convert_ids_to_tokens(i) + " ").encode().hex() for i in range(len(tok))}
    vocab = build_compact_vocab([ids(t) for t in USERS + REPLIES], words, [end])
    rows = np.stack([np.concatenate([prompt_row(ids(u), [], vocab, P), response_row(ids(r) + [end], vocab, L)])
                     for u, r in zip(USERS * 8, REPLIES * 8)])
    task = CorpusTask("tiny-twins", rows[:12], rows[12:], vocab, P)
    runs = root / "runs"
    for d in ("ar", "mdlm"):
        (runs / d).mkdir(parents=True)
        write_student_record(runs / d, task, {"checkpoint": str(teacher), "sha256": "tiny"})
    train("ar", "tiny", runs / "ar", steps=30, grammar=task, progress=False)
    train("mdlm", "tiny", runs / "mdlm", steps=30, grammar=task, progress=False, shift=True, init_from=runs / "ar",
          patience=5)
    prompts = root / "prompts.json"
    prompts.write_text(json.dumps([{"instruction": u} for u in USERS]))
    return {"task": task, "runs": runs, "prompts": prompts, "ids": ids, "vocab": vocab}


def audit_rows(out) -> dict[str, list[dict]]:
    """The audit's stored rows by sampler label."""
    cells = [json.loads(p.read_text()) for p in (out / "cells").glob("*.json")]
    return {c["spec"]["name"].split("|")[0]: c["samples"] for c in cells}


def test_the_audit_draws_exactly_the_twins_swap_rows(student, tmp_path):
    from toydlm.real.audit.plan import cell_seed
    from toydlm.train.checkpoint import load_denoiser

    out = tmp_path / "audit"
    args = ["audit", "--model", str(student["runs"] / "mdlm"), "--kind", "dlm", "--prompts", str(student["prompts"]),
            "--samplers", "low_confidence,ar_order,low_confidence+eos_forbidden", "--samples", "3",
            "--temperature", "1", "--gen-length", "8", "--steps", "4", "--out", str(out), "--n-boot", "50",
            "--no-progress"]
    assert main(args) == 0
    a = json.loads((out / "audit.json").read_text())
    assert a["model"]["twins_student"] is True and [e["role"] for e in a["model"]["end_tokens"]] == ["end_of_text",
                                                                                               "end_of_turn"]
    got = audit_rows(out)
    task, v = student["task"], student["vocab"]
    den = load_denoiser(student_root(student["runs"] / "mdlm") / "best", grammar=task)
    prompts = np.repeat(np.stack([prompt_row(student["ids"](u), [], v, P) for u in USERS]), 3, axis=0)
    seed = cell_seed(0, "raw", 1.0, 8)
    for label in ("low_confidence", "ar_order", "low_confidence+eos_forbidden"):
        mine = sample_cell(den, task, sampler_at(label, 8), prompts, "raw", True, seed, samples=3)["rows"]
        theirs = {(r["prompt"], r["sample"]): r for r in got[label]}
        assert len(theirs) == len(mine) == 6
        for r in mine:
            t = theirs[(r["prompt"], r["sample"])]
            assert (t["text"], t["length"], t["ended"]) == (r["text"], r["length"], r["ended"]), label


def test_a_student_is_audited_only_as_a_diffusion_model_on_its_own_canvas(student, tmp_path, capsys):
    base = ["audit", "--model", str(student["runs"] / "mdlm"), "--prompts", str(student["prompts"]), "--out",
            str(tmp_path / "x"), "--no-progress"]
    assert main([*base, "--kind", "ar"]) == 2
    assert "is a twins student: audit it with --kind dlm" in capsys.readouterr().err
    assert main([*base, "--kind", "dlm", "--gen-length", "16"]) == 2
    assert "longer than the 12-token canvas" in capsys.readouterr().err
    from toydlm.real.twins.student_setup import open_student

    with pytest.raises(UserError, match="is an ar student"):
        open_student(student["runs"] / "ar", None)
    assert student_root(student["runs"] / "mdlm" / "best") == student["runs"] / "mdlm"
    assert student_root(student["prompts"]) is None
