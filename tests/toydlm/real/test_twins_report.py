"""The twins report's cell fields: the EOS-first excess of stored cells and paths without the machine's part."""

import math
from pathlib import Path

import pytest

from toydlm.real.twins.report import CELL_KEYS, build_report, portable_path, portable_students, with_eos_first_excess
from toydlm.trace import eos_first_excess_from_lengths


def stored_cell(share, lengths, **extra) -> dict:
    return {"student": "mdlm", "sampler": "low_confidence_T4", "attack": "raw", "n": len(lengths),
            "eos_first_share": share, "rows": {"length": list(lengths)}, **extra}


def test_a_cell_stored_without_the_excess_gets_it_from_its_lengths():
    c = with_eos_first_excess(stored_cell(0.6, [2, 3, 8]), 8)
    assert c["eos_first_excess_basis"] == "lengths"
    assert c["eos_first_excess"] == pytest.approx(eos_first_excess_from_lengths(0.6, [2, 3, 8], 8, 4))
    # by hand: K = 6, 5, 0; E = K / 8; h = 4; M = 1, 1, 0
    e, m = (6 + 5 + 0) / 24, 2 / 3
    assert c["eos_first_excess"] == pytest.approx((0.6 - e) / (m - e))
    # a share no order could reach under the lengths assumption proves it wrong for the cell: None
    assert with_eos_first_excess(stored_cell(0.9, [2, 3, 8]), 8)["eos_first_excess"] is None
    n8 = with_eos_first_excess(stored_cell(0.6, [2, 3, 8], n_first_commits=8), 8)  # h = C: no room
    assert n8["eos_first_excess"] is None


def test_a_cell_with_its_exact_excess_keeps_it_and_degenerate_cells_give_none():
    c = with_eos_first_excess(stored_cell(0.9, [2, 3], eos_first_excess=0.25), 8)
    assert c["eos_first_excess"] == 0.25 and c["eos_first_excess_basis"] == "commits"
    full = with_eos_first_excess(stored_cell(0.0, [8, 8]), 8)  # no end token at all: nothing to prefer
    assert full["eos_first_excess"] is None and full["eos_first_share"] == 0.0
    assert with_eos_first_excess(stored_cell(None, [3]), 8)["eos_first_excess"] is None


def test_report_cells_carry_the_excess_and_keep_every_other_field():
    cell = stored_cell(0.5, [4, 4], refusal_rate=0.5, refusal_rate_se=0.35, asr=None, asr_se=None,
                       mean_length=4.0, length_sd=0.0, seed=0, temperature=1.0)
    rep = build_report({"teacher": {}}, {"corpus": {k: 0 for k in ("n_prompts", "n_refusals", "n_compliances",
                                                                   "mean_len_refusal", "mean_len_compliance")},
                                         "response_len": 8}, [cell], {}, 8, {}, {})
    (out,) = rep["cells"]
    assert tuple(out) == CELL_KEYS
    assert {k: out[k] for k in CELL_KEYS if not k.startswith("eos_first_excess")} == {
        k: cell.get(k) for k in CELL_KEYS if not k.startswith("eos_first_excess")}
    assert out["eos_first_excess"] == pytest.approx(0.0) and out["eos_first_excess_basis"] == "lengths"
    assert not math.isnan(out["eos_first_excess"])


def test_paths_are_stored_without_the_machine_part(tmp_path):
    root = tmp_path / "repo"
    assert portable_path(str(root / "runs" / "twins" / "ar-s0" / "ckpt-1"), root) == "runs/twins/ar-s0/ckpt-1"
    assert portable_path("/elsewhere/runs/ar-s0/ckpt-1", root) == "ar-s0/ckpt-1"
    assert portable_path("runs/x", root) == "runs/x" and portable_path(None, root) is None
    s = {"ar": {"out_dir": str(root / "runs" / "ar"), "checkpoint": str(root / "runs" / "ar" / "ckpt-9"),
                "final_step": 9, "weights": "abc", "curve": {"train": [[1, 2.0]]}}}
    p = portable_students(s, root)
    assert p["ar"] == {**s["ar"], "out_dir": "runs/ar", "checkpoint": "runs/ar/ckpt-9"}
    assert not any(str(v).startswith("/") for v in p["ar"].values())
    assert portable_students(p, Path("/somewhere/else")) == p  # already portable: unchanged
