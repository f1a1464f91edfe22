"""Random tensors, reproducible from :func:`seed` on every backend.

A host generator draws one 64-bit seed per call; the backend's kernel expands it into numbers.
The same seed therefore gives the same sequence of calls, whatever else the program does.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from plugrad.core.device import get_device
from plugrad.core.dispatch import create
from plugrad.core.tensor import Tensor
from plugrad.functional._utils import shape_tuple

__all__ = ["seed", "uniform", "normal", "permutation", "next_seed", "get_state", "set_state"]

_generator = np.random.default_rng()


def seed(value: int) -> None:
    """Make every later random call reproducible."""
    global _generator
    _generator = np.random.default_rng(int(value))


def get_state() -> dict[str, Any]:
    """The global generator's state, for :func:`set_state` (a checkpoint that resumes exactly)."""
    return _generator.bit_generator.state


def set_state(state: dict[str, Any]) -> None:
    """Restore a state :func:`get_state` returned."""
    global _generator
    generator = np.random.default_rng()
    generator.bit_generator.state = state
    _generator = generator


def next_seed() -> int:
    """A fresh seed from the global generator (for kernels and data loaders)."""
    return int(_generator.integers(0, 2**63 - 1))


def _size(size: Any) -> tuple[int, ...]:
    return () if size is None else shape_tuple("random", size)


def uniform(low: float = 0.0, high: float = 1.0, size: Any = None, device: Any = None) -> Tensor:
    """Samples from ``U[low, high)`` as float32."""
    if high < low:
        raise ValueError(f"uniform: high ({high}) must not be below low ({low})")
    dev = get_device(device)
    unit = create("uniform", dev, shape=_size(size), dtype=np.dtype("float32"), seed=next_seed())
    return unit * (high - low) + low if (low, high) != (0.0, 1.0) else unit


def normal(mean: float = 0.0, std: float = 1.0, size: Any = None, device: Any = None) -> Tensor:
    """Samples from ``N(mean, std**2)`` as float32."""
    if std < 0:
        raise ValueError(f"normal: std must be non-negative, got {std}")
    dev = get_device(device)
    unit = create("normal", dev, shape=_size(size), dtype=np.dtype("float32"), seed=next_seed())
    return unit * std + mean if (mean, std) != (0.0, 1.0) else unit


def permutation(n: int | Tensor, *, dtype: str = "int32", device: Any = None) -> Tensor:
    """A random permutation of ``range(n)``, or of a tensor's first axis."""
    if isinstance(n, Tensor):
        order = _generator.permutation(n.shape[0])
        return n[Tensor(order, dtype="int32", device=n.device)]
    if int(n) < 0:
        raise ValueError(f"permutation: n must be non-negative, got {n}")
    return Tensor(_generator.permutation(int(n)), dtype=dtype, device=device)
