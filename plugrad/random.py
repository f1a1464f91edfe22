"""Random tensors, reproducible from :func:`seed` on every backend; :class:`RNG` for own streams.

A host generator draws one 64-bit seed per call; the backend's kernel expands it into numbers.
The same seed therefore gives the same sequence of calls, whatever else the program does. The
module-level functions share one default :class:`RNG`; an ``RNG(seed)`` of your own draws a
stream that no other call (dropout, initialisers) disturbs.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from plugrad.core import dispatch
from plugrad.core.device import get_device
from plugrad.core.dispatch import create
from plugrad.core.tensor import Tensor
from plugrad.functional._utils import shape_tuple

__all__ = ["RNG", "seed", "uniform", "normal", "permutation", "shuffle", "next_seed",
           "get_state", "set_state"]


def _size(size: Any) -> tuple[int, ...]:
    return () if size is None else shape_tuple("random", size)


class RNG:
    """A generator with its own state: ``RNG(seed)`` draws the same numbers on every run.

    Args:
        seed: an int, or None for a fresh seed from the operating system.
        device: where its tensors are created (the default device if None).

    Example:
        >>> a, b = RNG(7).uniform(size=(2,)), RNG(7).uniform(size=(2,))
        >>> bool((a == b).all())
        True
    """

    def __init__(self, seed: int | None = None, device: Any = None) -> None:
        if seed is not None and (isinstance(seed, bool)
                                 or not isinstance(seed, (int, np.integer))):
            raise TypeError(f"RNG: seed must be an int or None; got {type(seed).__name__} "
                            f"{seed!r}")
        self._generator = np.random.default_rng(None if seed is None else int(seed))
        self._device = device

    def _next_seed(self) -> int:
        if dispatch.tracer is not None:  # a traced random op draws from this generator again
            dispatch.tracer.seeded_by(self)
        return int(self._generator.integers(0, 2**63 - 1))

    def _draw(self, op: str, size: Any, device: Any) -> Tensor:
        dev = get_device(self._device if device is None else device)
        return create(op, dev, shape=_size(size), dtype=np.dtype("float32"),
                      seed=self._next_seed())

    def uniform(self, low: float = 0.0, high: float = 1.0, size: Any = None,
                device: Any = None) -> Tensor:
        """Samples from ``U[low, high)`` as float32."""
        if high < low:
            raise ValueError(f"uniform: high ({high}) must not be below low ({low})")
        unit = self._draw("uniform", size, device)
        return unit * (high - low) + low if (low, high) != (0.0, 1.0) else unit

    def normal(self, mean: float = 0.0, std: float = 1.0, size: Any = None,
               device: Any = None) -> Tensor:
        """Samples from ``N(mean, std**2)`` as float32."""
        if std < 0:
            raise ValueError(f"normal: std must be non-negative, got {std}")
        unit = self._draw("normal", size, device)
        return unit * std + mean if (mean, std) != (0.0, 1.0) else unit

    def permutation(self, n: int | Tensor, *, dtype: str = "int32",
                    device: Any = None) -> Tensor:
        """A random permutation of ``range(n)``, or of a tensor's first axis (a new tensor)."""
        if dispatch.tracer is not None:
            dispatch.tracer.refuse("permutation draws on the host; a replay would repeat this "
                                   "call's order. Draw it outside the traced function and pass "
                                   "it in as a Tensor argument")
        if isinstance(n, Tensor):
            if n.ndim == 0:
                raise ValueError("permutation: a 0-d tensor has no first axis to permute")
            order = self._generator.permutation(n.shape[0])
            return n[Tensor(order, dtype="int32", device=n.device)]
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
            raise TypeError(f"permutation: n must be an int or a Tensor; got "
                            f"{type(n).__name__} {n!r}")
        if int(n) < 0:
            raise ValueError(f"permutation: n must be non-negative, got {n}")
        target = self._device if device is None else device
        return Tensor(self._generator.permutation(int(n)), dtype=dtype, device=target)

    def shuffle(self, inp: Tensor) -> None:
        """Shuffle ``inp`` along its first axis, in place (the tensor takes the new order)."""
        if not isinstance(inp, Tensor):
            raise TypeError(f"shuffle: expected a Tensor; got {type(inp).__name__}")
        inp._set_data(self.permutation(inp.detach())._data)


_default = RNG()


def seed(value: int) -> None:
    """Make every later random call reproducible."""
    _default._generator = np.random.default_rng(int(value))


def next_seed() -> int:
    """A fresh seed from the global generator (for kernels and data loaders)."""
    return _default._next_seed()


def get_state() -> dict[str, Any]:
    """The default generator's state, for :func:`set_state` (a checkpoint that resumes exactly)."""
    return _default._generator.bit_generator.state


def set_state(state: dict[str, Any]) -> None:
    """Restore a state :func:`get_state` returned."""
    _default._generator.bit_generator.state = state


def uniform(low: float = 0.0, high: float = 1.0, size: Any = None, device: Any = None) -> Tensor:
    """Samples from ``U[low, high)`` as float32."""
    return _default.uniform(low, high, size, device)


def normal(mean: float = 0.0, std: float = 1.0, size: Any = None, device: Any = None) -> Tensor:
    """Samples from ``N(mean, std**2)`` as float32."""
    return _default.normal(mean, std, size, device)


def permutation(n: int | Tensor, *, dtype: str = "int32", device: Any = None) -> Tensor:
    """A random permutation of ``range(n)``, or of a tensor's first axis."""
    return _default.permutation(n, dtype=dtype, device=device)


def shuffle(inp: Tensor) -> None:
    """Shuffle ``inp`` along its first axis, in place."""
    _default.shuffle(inp)
