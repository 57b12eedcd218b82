"""The CLI tells a user's mistake (one line, exit 2) from a bug in toydlm (exit 1, traceback file)."""

import tempfile
import time

import pytest

import toydlm.cli.grammar_cmd as grammar_cmd
import toydlm.cli.train_cmd  # noqa: F401  (registered before it is patched below)
from toydlm.cli import main
from toydlm.errors import UserError


@pytest.fixture
def bug_dir(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.delenv("TOYDLM_DEBUG", raising=False)
    return tmp_path


def _raise(exc):
    def fail(*args, **kwargs):
        raise exc
    return fail


@pytest.mark.parametrize("exc", [ValueError("shapes (3,) and (4,) do not match"), KeyError("step"),
                                 FileNotFoundError("cache/x.json"), RuntimeError("XLA said no")])
def test_an_internal_failure_is_reported_as_a_bug_not_a_user_mistake(bug_dir, monkeypatch, capsys, exc):
    monkeypatch.setattr(grammar_cmd, "grammar_stats", _raise(exc))
    assert main(["grammar", "stats", "--n", "5"]) == 1
    err = capsys.readouterr().err
    assert "internal error" in err and "a bug in toydlm, not a mistake in your input" in err
    assert "toydlm grammar: error:" not in err  # the user-mistake format
    reports = list(bug_dir.glob("toydlm-bug-*.txt"))
    assert len(reports) == 1 and str(reports[0]) in err
    text = reports[0].read_text()
    assert "Traceback (most recent call last)" in text and type(exc).__name__ in text
    assert text.startswith("toydlm grammar stats --n 5")


def test_a_user_error_is_one_line_with_exit_status_2(bug_dir, monkeypatch, capsys):
    monkeypatch.setattr(grammar_cmd, "grammar_stats", _raise(UserError("--config: no such preset 'x'\nmore")))
    assert main(["grammar", "stats", "--n", "5"]) == 2
    err = capsys.readouterr().err
    assert err == "toydlm grammar: error: --config: no such preset 'x'\n"
    assert not list(bug_dir.glob("toydlm-bug-*.txt"))


def test_debug_mode_reraises_a_bug(monkeypatch):
    monkeypatch.setenv("TOYDLM_DEBUG", "1")
    monkeypatch.setattr(grammar_cmd, "grammar_stats", _raise(RuntimeError("boom")))
    with pytest.raises(RuntimeError, match="boom"):
        main(["grammar", "stats", "--n", "5"])


def test_a_bad_output_path_is_refused_before_any_training(tmp_path, monkeypatch, capsys):
    import toydlm.train

    monkeypatch.setattr(toydlm.train, "train", _raise(AssertionError("training must not start")))
    a_file = tmp_path / "taken"
    a_file.write_text("x")
    t0 = time.perf_counter()
    assert main(["train", "--arch", "ar", "--preset", "tiny", "--out", str(a_file)]) == 2
    assert time.perf_counter() - t0 < 30
    assert "is a file; give a folder" in capsys.readouterr().err
    assert main(["train", "--arch", "ar", "--preset", "tiny", "--out", str(a_file / "sub")]) == 2
    assert "cannot write to --out" in capsys.readouterr().err


@pytest.mark.parametrize("args,message", [
    (["sample", "--ckpt", "oracle", "--sampler", "random", "--n", "4", "--seed", "0", "--out", "{tmp}/d.npz"],
     "is a folder; give a file name"),
    (["sample", "--ckpt", "oracle", "--sampler", "random", "--n", "4", "--seed", "0", "--out", "{tmp}/x.txt"],
     "must end in .npz"),
    (["grammar", "sample", "--n", "4", "--seed", "0", "--out", "{tmp}/taken/x.jsonl"], "the folder of --out"),
    (["sample", "--ckpt", "{tmp}/no-such-ckpt", "--sampler", "random", "--n", "4", "--seed", "0",
      "--out", "{tmp}/x.npz"], "checkpoint not found"),
    (["show-trace", "{tmp}/missing.npz"], "trace file not found"),
])
def test_user_mistakes_on_paths_are_one_line(tmp_path, capsys, args, message):
    (tmp_path / "taken").write_text("a file where a folder should be")
    (tmp_path / "d.npz").mkdir()
    assert main([a.format(tmp=tmp_path) for a in args]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
