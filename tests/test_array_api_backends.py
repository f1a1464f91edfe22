"""Backends that are nothing but an Array API namespace, written from docs/backends.md alone.

The first code block of docs/backends.md is a complete plugin; it is run as written through
the conformance suite. PyTorch's namespace (through array_api_compat) is certified the same
way where torch is installed: it is no dependency of plugrad, so that test skips without it.
"""
from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import plugrad

ROOT = Path(plugrad.__file__).resolve().parents[1]
DOC = ROOT / "docs" / "backends.md"

TORCH_PLUGIN = '''
from plugrad.hookspecs import DeviceType, hookimpl


def _namespace():
    import array_api_compat.torch

    return array_api_compat.torch


PLUGRAD_API_VERSION = 2


@hookimpl
def plugrad_register(registry):
    registry.add_device_type(DeviceType(
        name="torch", namespace=_namespace, priority=-2,
        dtypes=("bool", "int8", "uint8", "int16", "int32", "float16", "float32", "float64")))
'''


def _conformance(folder: Path, module: str, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLUGRAD_")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(folder)])
    return subprocess.run([sys.executable, "-m", "plugrad.conformance", "--plugin", module,
                           "--backend", module, "-q", *args], capture_output=True, text=True,
                          env=env, cwd=folder, timeout=900)


def _summary(done: subprocess.CompletedProcess) -> str:
    return done.stdout.strip().splitlines()[-1]


def test_the_documented_backend_is_complete_in_under_50_lines(tmp_path):
    block = re.search(r"```python\n(# plugrad_ref/plugin\.py\n.*?)```", DOC.read_text(),
                      re.DOTALL).group(1)
    assert len(block.splitlines()) < 50
    (tmp_path / "doc_backend.py").write_text(block)
    done = _conformance(tmp_path, "doc_backend", "-k",
                        "test_backend or matmul or conv2d or sgd_update or test_edges")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "failed" not in _summary(done) and "passed" in _summary(done)


@pytest.mark.skipif(importlib.util.find_spec("torch") is None,
                    reason="torch is not installed (it is no dependency of plugrad)")
def test_torch_through_array_api_compat_is_certified(tmp_path):
    (tmp_path / "torch_backend.py").write_text(TORCH_PLUGIN)
    done = _conformance(tmp_path, "torch_backend")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    summary = _summary(done)
    assert int(re.search(r"(\d+) passed", summary).group(1)) > 2000
    assert not re.search(r"failed|xfail|error", summary), summary
