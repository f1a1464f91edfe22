"""What several test packages share: the checkout's root, MNIST files, plugin venvs, numerics."""
from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
