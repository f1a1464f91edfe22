"""A throwaway virtual environment with local plugin projects installed for real by pip.

The venv sees this interpreter's site-packages (numpy, pluggy, pytest, setuptools, plugrad's
own entry point) through a ``.pth`` file; the projects are installed offline, and every check runs in a subprocess of the venv's
Python with this checkout first on ``PYTHONPATH``.
"""
from __future__ import annotations

import os
import re
import shutil
import site
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import plugrad

ROOT = Path(plugrad.__file__).resolve().parents[1]


@dataclass
class Venv:
    python: Path
    workdir: Path

    def run(self, *args: str, env: dict[str, str] | None = None,
            timeout: float = 300) -> subprocess.CompletedProcess:
        clean = {k: v for k, v in os.environ.items() if not k.startswith("PLUGRAD_")}
        clean["PYTHONPATH"] = str(ROOT)
        clean.update(env or {})
        return subprocess.run([str(self.python), *args], capture_output=True, text=True,
                              env=clean, cwd=self.workdir, timeout=timeout)

    def script(self, code: str, **kwargs) -> subprocess.CompletedProcess:
        return self.run("-c", textwrap.dedent(code), **kwargs)


def _pip_has_python_option() -> bool:
    version = subprocess.run([sys.executable, "-m", "pip", "--version"], capture_output=True,
                             text=True).stdout.split()
    if len(version) < 2:
        return False
    major, minor = (int(p) for p in re.findall(r"\d+", version[1])[:2])
    return (major, minor) >= (22, 3)


def _see_this_interpreters_packages(python: Path) -> None:
    """Put this interpreter's site-packages on the new venv's path with a ``.pth`` file.

    ``--system-site-packages`` would not do: from inside a virtual environment it exposes the
    base interpreter's packages, not this environment's, so the build would meet whatever
    setuptools the base has (often without ``bdist_wheel``) instead of the ``test`` extra's.
    """
    where = "import sysconfig; print(sysconfig.get_path('purelib'))"
    purelib = subprocess.run([str(python), "-c", where],
                             capture_output=True, text=True, check=True).stdout.strip()
    ours = [path for path in site.getsitepackages() if os.path.isdir(path)]
    Path(purelib, "_plugrad_test_parent.pth").write_text("\n".join(ours) + "\n")


def make_venv(base: Path, projects: list[Path]) -> Venv:
    """A venv under ``base`` with ``projects`` (local folders) pip-installed into it."""
    env_dir = base / "venv"
    fast = _pip_has_python_option()
    command = [sys.executable, "-m", "venv", str(env_dir)]
    subprocess.run(command + (["--without-pip"] if fast else []), check=True)
    python = env_dir / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    _see_this_interpreters_packages(python)
    # Build from copies: pip builds local projects in place and would leave build/ behind.
    sources = []
    for source in projects:
        target = base / source.name
        shutil.copytree(source, target, ignore=shutil.ignore_patterns(
            "build", "*.egg-info", "__pycache__"))
        sources.append(str(target))
    pip = [sys.executable, "-m", "pip", "--python", str(python)] if fast \
        else [str(python), "-m", "pip"]
    done = subprocess.run([*pip, "install", "--quiet", "--no-deps", "--no-build-isolation",
                           "--no-index", *sources], capture_output=True, text=True, check=False)
    assert done.returncode == 0, f"pip install failed:\n{done.stdout}\n{done.stderr}"
    workdir = base / "work"
    workdir.mkdir()
    return Venv(python, workdir)
