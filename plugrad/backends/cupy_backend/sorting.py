"""``argsort`` on the GPU: CuPy's sort is always stable (thrust) but has no ``stable=`` keyword."""
from __future__ import annotations

from types import ModuleType
from typing import Any, Callable

__all__ = ["kernels"]


def kernels(cupy: ModuleType) -> dict[str, Callable[..., Any]]:
    """``argsort`` for arrays of module ``cupy``, with the generic kernel's tie order."""
    int32 = cupy.dtype("int32")

    def argsort(x, *, axis, descending):
        if not descending:
            return cupy.argsort(x, axis=axis).astype(int32)
        order = cupy.flip(cupy.argsort(cupy.flip(x, axis=axis), axis=axis), axis=axis)
        return (x.shape[axis] - 1 - order).astype(int32)

    return {"argsort": argsort}
