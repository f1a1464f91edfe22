"""Random tensors, reproducible from :func:`seed` on every backend; :class:`RNG` for own streams.

A host generator draws one 64-bit seed per call; the backend's kernel expands it into numbers.
The same seed therefore gives the same sequence of calls, whatever else the program does. The
module-level functions share one default :class:`RNG`; an ``RNG(seed)`` of your own draws a
stream that no other call (dropout, initialisers) disturbs.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from plugrad import functional as F
from plugrad.core import dispatch
from plugrad.core.device import get_device
from plugrad.core.dispatch import create
from plugrad.core.tensor import Tensor
from plugrad.functional._utils import shape_tuple

__all__ = ["RNG", "seed", "uniform", "normal", "gamma", "beta", "poisson", "permutation",
           "shuffle", "next_seed", "get_state", "set_state"]


def _size(size: Any) -> tuple[int, ...]:
    """MegEngine's default draw is one number, shape (1,)."""
    return (1,) if size is None else shape_tuple("random", size)


def _batch(size: Any) -> tuple[int, ...]:
    """The leading axes ``size`` puts before a distribution's parameter shape."""
    if size is None:
        return ()
    return shape_tuple("random", (size,) if isinstance(size, (int, np.integer)) else size)


class RNG:
    """A generator with its own state: ``RNG(seed)`` draws the same numbers on every run.

    Args:
        seed: an int, or None for a fresh seed from the operating system.
        device: where its tensors are created (the default device if None).

    Every method returns float32 (``permutation`` of an int: ``dtype``). Gamma, beta and
    Poisson samples are built from this generator's uniform and normal draws with ordinary
    ops, so every backend draws them.

    Example:
        >>> a, b = RNG(7).uniform(size=(2,)), RNG(7).uniform(size=(2,))
        >>> bool((a == b).numpy().all())
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

    def _draw(self, op: str, shape: tuple[int, ...], device: Any) -> Tensor:
        dev = get_device(self._device if device is None else device)
        return create(op, dev, shape=shape, dtype=np.dtype("float32"), seed=self._next_seed())

    def uniform(self, low: float = 0, high: float = 1, size: Any = None, *,
                device: Any = None) -> Tensor:
        """Samples from ``U[low, high)``; ``size`` None draws one, shape (1,)."""
        if not low < high:
            raise ValueError(f"uniform: low must be below high; got low={low}, high={high}")
        unit = self._draw("uniform", _size(size), device)
        return unit * (high - low) + low if (low, high) != (0, 1) else unit

    def normal(self, mean: float = 0, std: float = 1, size: Any = None, *,
               device: Any = None) -> Tensor:
        """Samples from ``N(mean, std**2)``; ``size`` None draws one, shape (1,)."""
        if std < 0:
            raise ValueError(f"normal: std must be non-negative, got {std}")
        unit = self._draw("normal", _size(size), device)
        return unit * std + mean if (mean, std) != (0, 1) else unit

    def gamma(self, shape: Tensor | float, scale: Tensor | float = 1,
              size: Any = None) -> Tensor:
        """Samples from Gamma(``shape``, ``scale``), density ``x**(k-1) e**(-x/theta)``.

        Args:
            shape, scale: positive numbers or tensors (broadcast together).
            size: leading axes: the result is ``size + broadcast(shape, scale).shape``.
        """
        k, theta = _parameters(self, "gamma", (("shape", shape), ("scale", scale)),
                                        _batch(size))
        return _gamma(self, k) * theta

    def beta(self, alpha: Tensor | float, beta: Tensor | float, size: Any = None) -> Tensor:
        """Samples from Beta(``alpha``, ``beta``) on (0, 1); shapes as :meth:`gamma`."""
        a, b = _parameters(self, "beta", (("alpha", alpha), ("beta", beta)),
                                    _batch(size))
        x, y = _gamma(self, a), _gamma(self, b)
        return x / (x + y)

    def poisson(self, lam: Tensor | float, size: Any = None) -> Tensor:
        """Counts (as float32) from Poisson(``lam``); the result is ``size + lam.shape``."""
        (rate,) = _parameters(self, "poisson", (("lam", lam),), _batch(size))
        return _poisson(self, rate)

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


# -- gamma, beta and Poisson from uniform and normal draws ------------------------------------
# Each is a loop of elementwise ops over the whole tensor; a round ends with one host check of
# whether any element still waits, so the number of kernel calls grows with log(lam) at most.
_SMALL_COUNT = 16  # below this a Poisson or binomial count is drawn one event at a time


def _parameters(rng: RNG, op: str, named: Any, batch: tuple[int, ...]) -> list[Tensor]:
    """Positive float32 parameters broadcast to ``batch + broadcast(shapes)``."""
    device = get_device(rng._device)
    values = []
    for name, value in named:
        if isinstance(value, Tensor):
            value = F.astype(value.detach(), "float32")
            if value.size and not bool((value > 0).numpy().all()):
                raise ValueError(f"{op}: {name} must be positive everywhere; got a tensor with "
                                 f"smallest value {F.min(value).item()}")
        elif isinstance(value, bool) or not isinstance(value, (int, float, np.number)):
            raise TypeError(f"{op}: {name} must be a number or a Tensor; got "
                            f"{type(value).__name__} {value!r}")
        elif not value > 0:
            raise ValueError(f"{op}: {name} must be positive; got {value}")
        else:
            value = Tensor(value, dtype="float32", device=device)
        values.append(value)
    try:
        shape = batch + np.broadcast_shapes(*(tuple(v.shape) for v in values))
    except ValueError:
        shapes = ", ".join(f"{name} {tuple(v.shape)}" for (name, _), v in zip(named, values))
        raise ValueError(f"{op}: the parameters' shapes do not broadcast: {shapes}") from None
    return [v if tuple(v.shape) == shape else F.broadcast_to(v, shape) for v in values]


def _waiting(mask: Tensor) -> bool:
    return bool(mask.numpy().any())


def _gamma(rng: RNG, k: Tensor) -> Tensor:
    """Gamma(k, 1) by Marsaglia and Tsang's squeeze-free rejection; k < 1 boosted by U**(1/k)."""
    shape = tuple(k.shape)
    boost = k < 1
    a = F.where(boost, k + 1, k)
    d = a - 1.0 / 3.0
    c = 1.0 / F.sqrt(d * 9.0)
    out = F.zeros_like(k)
    pending = F.ones_like(k) > 0
    while _waiting(pending):
        z = rng._draw("normal", shape, None)
        u = 1.0 - rng._draw("uniform", shape, None)  # in (0, 1], so its log is finite
        v = 1.0 + c * z
        cube = v * v * v
        positive = v > 0
        safe = F.where(positive, cube, F.ones_like(cube))
        accept = positive & (F.log(u) < 0.5 * z * z + d - d * safe + d * F.log(safe))
        out = F.where(pending & accept, d * safe, out)
        pending = pending & ~accept
    if _waiting(boost):
        u = rng._draw("uniform", shape, None)
        out = out * F.where(boost, u ** (1.0 / k), F.ones_like(k))
    return out


def _binomial(rng: RNG, n: Tensor, p: Tensor) -> Tensor:
    """Binomial(n, p) counts: halve n through the order statistics of n uniforms (a beta draw),
    then draw the last few trials one by one."""
    count = F.zeros_like(p)
    while _waiting(n > _SMALL_COUNT):
        big = n > _SMALL_COUNT
        i = F.where(big, F.floor((n + 1) * 0.5), F.ones_like(n))
        x = _gamma(rng, i)
        y = x / (x + _gamma(rng, F.where(big, n + 1 - i, F.ones_like(n))))
        below = big & (y <= p)  # the i smallest uniforms all fell below p
        above = big & ~(y <= p)
        count = count + F.where(below, i, F.zeros_like(i))
        n, p = (F.where(below, n - i, F.where(above, i - 1, n)),
                F.clip(F.where(below, (p - y) / (1 - y), F.where(above, p / y, p)), 0.0, 1.0))
    for trial in range(int(F.max(n).item()) if n.size else 0):
        hit = (rng._draw("uniform", tuple(p.shape), None) < p) & (n > trial)
        count = count + F.astype(hit, "float32")
    return count


def _poisson(rng: RNG, lam: Tensor) -> Tensor:
    """Poisson(lam) counts: jump over ``m`` arrivals at once with a Gamma(m) arrival time
    (a binomial split when the jump overshoots), then count the last arrivals one by one."""
    count, rest = F.zeros_like(lam), lam
    while _waiting(rest > _SMALL_COUNT):
        big = rest > _SMALL_COUNT
        m = F.where(big, F.floor(rest * 0.875), F.ones_like(rest))
        arrival = _gamma(rng, m)
        hit = big & (arrival <= rest)
        miss = big & ~(arrival <= rest)
        count = count + F.where(hit, m, F.zeros_like(m))
        if _waiting(miss):  # fewer than m arrivals before rest: each earlier one is uniform
            split = _binomial(rng, F.where(miss, m - 1, F.zeros_like(m)),
                              F.where(miss, rest / arrival, F.zeros_like(m)))
            count = count + F.where(miss, split, F.zeros_like(split))
        rest = F.where(hit, rest - arrival, F.where(miss, F.zeros_like(rest), rest))
    clock = F.zeros_like(rest)
    alive = rest > 0
    while _waiting(alive):
        clock = clock - F.log(1.0 - rng._draw("uniform", tuple(rest.shape), None))
        alive = alive & (clock <= rest)
        count = count + F.astype(alive, "float32")
    return count


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


def uniform(low: float = 0, high: float = 1, size: Any = None, *,
            device: Any = None) -> Tensor:
    """Samples from ``U[low, high)``; ``size`` None draws one, shape (1,)."""
    return _default.uniform(low, high, size, device=device)


def normal(mean: float = 0, std: float = 1, size: Any = None, *, device: Any = None) -> Tensor:
    """Samples from ``N(mean, std**2)``; ``size`` None draws one, shape (1,)."""
    return _default.normal(mean, std, size, device=device)


def gamma(shape: Tensor | float, scale: Tensor | float = 1, size: Any = None) -> Tensor:
    """Samples from Gamma(``shape``, ``scale``); see :meth:`RNG.gamma`."""
    return _default.gamma(shape, scale, size)


def beta(alpha: Tensor | float, beta: Tensor | float, size: Any = None) -> Tensor:
    """Samples from Beta(``alpha``, ``beta``); see :meth:`RNG.beta`."""
    return _default.beta(alpha, beta, size)


def poisson(lam: Tensor | float, size: Any = None) -> Tensor:
    """Samples from Poisson(``lam``); see :meth:`RNG.poisson`."""
    return _default.poisson(lam, size)


def permutation(n: int | Tensor, *, dtype: str = "int32", device: Any = None) -> Tensor:
    """A random permutation of ``range(n)``, or of a tensor's first axis."""
    return _default.permutation(n, dtype=dtype, device=device)


def shuffle(inp: Tensor) -> None:
    """Shuffle ``inp`` along its first axis, in place."""
    _default.shuffle(inp)
