"""Running ``python -m plugrad`` in a subprocess, and small MNIST-shaped data sets."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.helpers.data import NO_MNIST, make_mnist, real_mnist  # noqa: F401


def plugrad(*args: str, cwd: Path, timeout: float = 300,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """``python -m plugrad ARGS`` with plugrad's settings cleared from the environment, then
    ``env``'s set."""
    return _run(["-m", "plugrad", *args], cwd, timeout, env)


def python(code: str, cwd: Path, timeout: float = 300,
           env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """``python -c CODE`` in the same environment as :func:`plugrad`'s."""
    return _run(["-c", code], cwd, timeout, env)


def _run(args: list[str], cwd: Path, timeout: float,
         env: dict[str, str] | None) -> subprocess.CompletedProcess:
    settings = {k: v for k, v in os.environ.items() if not k.startswith("PLUGRAD_")}
    return subprocess.run([sys.executable, *args], capture_output=True, text=True,
                          timeout=timeout, cwd=cwd, env={**settings, **(env or {})})


def small_mnist(folder: Path, train: int = 96, test: int = 40) -> Path:
    """Random MNIST-format IDX files: enough to exercise the commands in a second."""
    make_mnist(str(folder), train, train=True)
    make_mnist(str(folder), test, train=False)
    return folder
