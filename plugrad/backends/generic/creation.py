"""Creation primitives over an Array API namespace.

The standard has no random numbers: ``uniform`` and ``normal`` draw with NumPy's generator from
the op's seed (so every backend draws the numbers the numpy backend draws) and move them with
``xp.asarray``. A backend with a generator on its device overrides them.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

NEEDS = ("full", "arange", "asarray")


def kernels(xp: Any, host_dtype: Callable[[Any], np.dtype]) -> dict[str, Callable]:
    def full(*, shape, value, dtype):
        return xp.full(shape, value, dtype=dtype)

    def arange(*, start, stop, step, dtype):
        return xp.arange(start, stop, step, dtype=dtype)

    def uniform(*, shape, dtype, seed):
        target = host_dtype(dtype)
        rng = np.random.default_rng(seed)
        if target.name in ("float32", "float64"):
            host = rng.random(shape, dtype=target)
        else:  # a float32 draw near 1 rounds up to 1.0 in float16; multiples of 2**-11 stay below
            host = (rng.integers(0, 2048, size=shape) * 2.0 ** -11).astype(target)
        return xp.asarray(host, dtype=dtype)

    def normal(*, shape, dtype, seed):
        target = host_dtype(dtype)
        draw = target if target.name in ("float32", "float64") else np.dtype("float32")
        host = np.random.default_rng(seed).standard_normal(shape, dtype=draw).astype(target)
        return xp.asarray(host, dtype=dtype)

    return {"full": full, "arange": arange, "uniform": uniform, "normal": normal}
