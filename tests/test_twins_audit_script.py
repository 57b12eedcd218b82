"""experiments/twins_audit.py: the held-out prompts reach the audit as prompt files it reads back whole, and a
name that is not an MDLM student is a one-line error."""

import importlib.util
import json
from pathlib import Path

import pytest

from toydlm.bridge.prompts import load_prompts
from toydlm.real.twins.corpus import holdout_prompts

ROOT = Path(__file__).resolve().parents[1]


def _script():
    spec = importlib.util.spec_from_file_location("twins_audit", ROOT / "experiments" / "twins_audit.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_the_prompt_files_hold_the_holdout_in_order(tmp_path):
    harmful, harmless = _script().write_prompt_files(tmp_path)
    h = holdout_prompts()
    assert load_prompts(harmful) == h["harmful"] and load_prompts(harmless) == h["harmless"]


def test_a_student_is_found_by_its_name_and_an_ar_student_is_refused(tmp_path):
    (tmp_path / "students.json").write_text(json.dumps({
        "ar": {"arch": "ar", "out_dir": "t/ar-s0"}, "mdlm_s1": {"arch": "mdlm", "out_dir": "t/mdlm-s1"}}))
    mod = _script()
    assert mod.student_folder(Path("runs"), tmp_path, "mdlm_s1") == Path("runs/t/mdlm-s1/best")
    for name in ("ar", "mdlm_s7"):
        with pytest.raises(SystemExit, match=f"error: {name} is not an MDLM student"):
            mod.student_folder(Path("runs"), tmp_path, name)
