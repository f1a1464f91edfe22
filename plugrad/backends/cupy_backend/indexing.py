"""``index_add`` and ``scatter_add`` on the GPU, with ``numpy.add.at`` semantics.

Both add every value, duplicates included, which on a GPU means atomic adds. CUDA has them for
float16, float32, float64 and int32 (``cupyx.scatter_add``), not for bool, int8, uint8 or int16:
those accumulate in int32 and are cast back, which gives what NumPy gives - integer sums wrap
modulo 2**bits either way, and a bool sum is "any".
"""
from __future__ import annotations

from types import ModuleType
from typing import Any, Callable

__all__ = ["kernels"]

_ATOMIC_DTYPES = frozenset({"float16", "float32", "float64", "int32"})


def kernels(cupy: ModuleType) -> dict[str, Callable[..., Any]]:
    """``index_add`` and ``scatter_add`` for arrays of module ``cupy``."""
    import cupyx

    scatter_add = cupyx.scatter_add
    int32 = cupy.dtype("int32")

    def add_at(out, index, value):
        """``numpy.add.at(out, index, value)``; returns the result (``out`` or a new array)."""
        if out.dtype.name in _ATOMIC_DTYPES:
            scatter_add(out, index, value.astype(out.dtype, copy=False))
            return out
        wide = out.astype(int32)
        scatter_add(wide, index, value.astype(int32))
        return wide.astype(out.dtype)

    def index_add(x, value, *, index):
        return add_at(x.copy(), index, value)

    def scatter_add_along(x, index, value, *, axis):
        # out[i0, .., index[i0, .., ik, ..], ..] += value[i0, .., ik, ..]: every other axis is
        # addressed by an arange shaped to broadcast along its own dimension only.
        ndim = index.ndim
        grid = []
        for dim, size in enumerate(index.shape):
            if dim == axis:
                grid.append(index)
            else:
                shape = [1] * ndim
                shape[dim] = size
                grid.append(cupy.arange(size, dtype=int32).reshape(shape))
        return add_at(x.copy(), tuple(grid), value)

    return {"index_add": index_add, "scatter_add": scatter_add_along}
