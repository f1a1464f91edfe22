"""Running ``python -m plugrad`` in a subprocess, and small MNIST-shaped data sets."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data"))
from data_test_helpers import NO_MNIST, make_mnist, real_mnist  # noqa: E402,F401


def plugrad(*args: str, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    """``python -m plugrad ARGS`` with plugrad's settings cleared from the environment."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLUGRAD_")}
    return subprocess.run([sys.executable, "-m", "plugrad", *args], capture_output=True,
                          text=True, timeout=timeout, cwd=cwd, env=env)


def small_mnist(folder: Path, train: int = 96, test: int = 40) -> Path:
    """Random MNIST-format IDX files: enough to exercise the commands in a second."""
    make_mnist(str(folder), train, train=True)
    make_mnist(str(folder), test, train=False)
    return folder
