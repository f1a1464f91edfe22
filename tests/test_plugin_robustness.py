"""Plugins that exit, hang or crawl, installed for real with pip: plugrad survives each one.

Each misbehaviour is an entry point of ``tests/fixtures/plugrad-misbehaving-backends``; a test
picks the ones it wants with PLUGRAD_BACKENDS and runs plugrad in a subprocess of the venv.
PLUGRAD_PLUGIN_TIMEOUT shortens the 10 s watchdog so the hang cases stay quick.
"""
from __future__ import annotations

import re
import subprocess

import pytest

from tests.plugin_venv import ROOT, Venv, make_venv

MISBEHAVING = ROOT / "tests" / "fixtures" / "plugrad-misbehaving-backends"
SOURCE = "plugrad-misbehaving-backends 0.0.1"
MAKE_A_TENSOR = "import plugrad; print(plugrad.Tensor([1.0, 2.0]).sum().item())"


@pytest.fixture(scope="module")
def venv(tmp_path_factory) -> Venv:
    return make_venv(tmp_path_factory.mktemp("misbehaving-venv"), [MISBEHAVING])


def _backends(*names: str, timeout: float = 10) -> dict[str, str]:
    return {"PLUGRAD_BACKENDS": ",".join(("numpy",) + names),
            "PLUGRAD_PLUGIN_TIMEOUT": str(timeout)}


@pytest.mark.parametrize("plugin, reason", [
    ("exits_at_import", "import failed: SystemExit: 3"),
    ("exits_in_register", "plugrad_register raised SystemExit: no licence server"),
])
def test_a_plugin_that_exits_does_not_end_the_program(venv, plugin, reason):
    done = venv.script(MAKE_A_TENSOR, env=_backends(plugin))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "3.0"
    info = venv.run("-m", "plugrad", "info", env=_backends(plugin))
    assert info.returncode == 0, info.stderr
    assert re.search(rf"{plugin}\s+failed\s+{SOURCE}", info.stdout), info.stdout
    assert reason in info.stdout


def test_a_hanging_is_available_is_named_on_stderr_and_the_process_can_be_killed(venv):
    env = _backends("hangs_in_is_available", timeout=1)
    with pytest.raises(subprocess.TimeoutExpired) as killed:  # run() kills it on the timeout
        venv.script(MAKE_A_TENSOR, env=env, timeout=8)
    stderr = killed.value.stderr or b""
    stderr = stderr.decode() if isinstance(stderr, bytes) else stderr
    assert ("backend plugin 'hangs_in_is_available' (plugrad-misbehaving-backends 0.0.1) has "
            "been running is_available()/device_count() of device type 'stuck' for 1 s") in stderr


def test_plugrad_info_finishes_and_reports_a_hanging_is_available_as_timed_out(venv):
    done = venv.run("-m", "plugrad", "info", env=_backends("hangs_in_is_available", timeout=1),
                    timeout=60)
    assert done.returncode == 0, done.stderr
    assert re.search(r"stuck\s+backend 'hangs_in_is_available'.*unavailable: timed out: "
                     r"is_available\(\)/device_count\(\) did not return within 1 s",
                     done.stdout), done.stdout
    assert "xpux resolves to: cpu" in done.stdout  # the stuck type is passed over
    assert "hangs_in_is_available" in done.stderr  # the watchdog named it as well


def test_plugin_load_times_are_shown_and_a_slow_import_is_named(venv):
    env = {**_backends("slow_import", timeout=0.5), "MISBEHAVING_IMPORT_SECONDS": "1.5"}
    done = venv.run("-m", "plugrad", "info", env=env)
    assert done.returncode == 0, done.stderr
    slow = re.search(r"slow_import\s+loaded\s+.*device types: slow\s+\(load ([\d.]+) s\)",
                     done.stdout)
    assert slow, done.stdout
    assert 1.5 <= float(slow.group(1)) < 10
    assert re.search(r"numpy\s+loaded\s+.*\(load \d+ ms\)", done.stdout), done.stdout
    assert ("backend plugin 'slow_import' (plugrad-misbehaving-backends 0.0.1) has been "
            "running its import (plugrad_misbehaving.slow)") in done.stderr
