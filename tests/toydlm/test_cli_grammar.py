"""The grammar CLI: fields, errors without tracebacks."""

import json
import subprocess
import sys

from toydlm.cli import main


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "toydlm.cli", *args], capture_output=True, text=True, timeout=120)


def test_grammar_sample_writes_the_documented_fields(tmp_path):
    out = tmp_path / "g.jsonl"
    assert main(["grammar", "sample", "--n", "50", "--seed", "3", "--out", str(out)]) == 0
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(rows) == 50
    need = {"prompt", "response", "prompt_ids", "response_ids", "topic_kind", "attack", "harmful", "refusal"}
    assert need <= set(rows[0])
    assert {r["topic_kind"] for r in rows} <= {"benign", "harmful"}
    assert any(r["harmful"] for r in rows) or any(r["refusal"] for r in rows)


def test_grammar_stats_json_has_exact_and_per_family_rates(capsys):
    assert main(["grammar", "stats", "--json", "--n", "2000"]) == 0
    j = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert {"refusal_rate", "harmful_rate", "per_family"} <= set(j)
    assert j["per_family"]["cipher"]["unseen"] is True
    assert abs(j["per_family"]["prefix"]["harmful_prompts"]["harmful_rate"] - 0.63) < 1e-9


def test_bad_config_prints_one_line_and_exits_nonzero(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("no_such_field = 1\n")
    p = run_cli("grammar", "sample", "--n", "5", "--seed", "1", "--config", str(bad), "--out", str(tmp_path / "x"))
    assert p.returncode == 2
    assert "Traceback" not in p.stderr and len(p.stderr.strip().splitlines()) == 1
    assert "no_such_field" in p.stderr


def test_unknown_option_lists_valid_ones():
    p = run_cli("grammar", "stats", "--bogus")
    assert p.returncode == 2 and "--json" in p.stderr and "Traceback" not in p.stderr
