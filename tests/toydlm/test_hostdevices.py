"""The `toydlm` command splits the host CPU into JAX devices before JAX starts."""

import subprocess
import sys

import pytest

from toydlm.hostdevices import FLAG, requested_host_devices, split_host_cpu


def test_env_sets_the_count_and_bad_values_are_rejected(monkeypatch):
    monkeypatch.setenv("TOYDLM_HOST_DEVICES", "3")
    assert requested_host_devices() == 3
    for bad in ("0", "two", "-1"):
        monkeypatch.setenv("TOYDLM_HOST_DEVICES", bad)
        with pytest.raises(ValueError, match="TOYDLM_HOST_DEVICES"):
            requested_host_devices()


def test_a_process_that_already_imported_jax_is_left_alone(monkeypatch):
    import jax  # noqa: F401  (the test process has it anyway)

    monkeypatch.setenv("XLA_FLAGS", "")
    monkeypatch.setenv("TOYDLM_HOST_DEVICES", "2")
    assert split_host_cpu() is None
    import os

    assert os.environ["XLA_FLAGS"] == ""  # nothing leaks into child processes


def test_an_existing_flag_is_left_alone_and_one_device_adds_none(monkeypatch):
    monkeypatch.delitem(sys.modules, "jax", raising=False)  # as in a fresh `toydlm` process
    monkeypatch.setenv("XLA_FLAGS", f"{FLAG}=4")
    assert split_host_cpu() is None
    monkeypatch.setenv("XLA_FLAGS", "--xla_dump_to=/tmp/x")
    monkeypatch.setenv("TOYDLM_HOST_DEVICES", "1")
    assert split_host_cpu() == 1
    import os

    assert os.environ["XLA_FLAGS"] == "--xla_dump_to=/tmp/x"


def test_a_fresh_process_sees_the_requested_devices():
    code = ("from toydlm.hostdevices import split_host_cpu; split_host_cpu(); import jax; "
            "print(jax.device_count())")
    env = {"TOYDLM_HOST_DEVICES": "2", "JAX_PLATFORMS": "cpu", "PATH": "/usr/bin:/bin"}
    p = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-2000:]
    assert p.stdout.strip().splitlines()[-1] == "2"


def test_the_command_reports_a_bad_count_in_one_line():
    env = {"TOYDLM_HOST_DEVICES": "zero", "PATH": "/usr/bin:/bin"}
    p = subprocess.run([sys.executable, "-m", "toydlm.cli", "grammar", "stats"], env=env, capture_output=True,
                       text=True, timeout=300)
    assert p.returncode == 2
    assert p.stderr.strip().count("\n") == 0 and "TOYDLM_HOST_DEVICES" in p.stderr
