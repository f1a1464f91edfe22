"""Reductions over an Array API namespace; ``axis`` arrives as a tuple of ints or ``None``."""
from __future__ import annotations

from typing import Any, Callable

NEEDS = ("sum", "prod", "max", "min", "argmax", "argmin", "reshape", "astype", "int32", "int8",
         "bool")


def kernels(xp: Any) -> dict[str, Callable]:
    def sum_(x, *, axis, keepdims):
        return xp.sum(x, axis=axis, keepdims=keepdims, dtype=x.dtype)

    def prod(x, *, axis, keepdims):
        return xp.prod(x, axis=axis, keepdims=keepdims, dtype=x.dtype)

    def max_(x, *, axis, keepdims):
        return xp.max(x, axis=axis, keepdims=keepdims)

    def min_(x, *, axis, keepdims):
        return xp.min(x, axis=axis, keepdims=keepdims)

    def arg(find: Callable) -> Callable:
        def kernel(x, *, axis, keepdims):
            if x.dtype == xp.bool:  # NumPy's order, False < True; the standard takes numbers
                x = xp.astype(x, xp.int8)
            if axis is None and keepdims:  # the standard keeps dims only along one axis
                out = find(xp.reshape(x, (-1,)), axis=0, keepdims=True)
                out = xp.reshape(out, (1,) * x.ndim)
            else:
                out = find(x, axis=axis, keepdims=keepdims)
            return xp.astype(out, xp.int32)

        return kernel

    return {"sum": sum_, "prod": prod, "max": max_, "min": min_,
            "argmax": arg(xp.argmax), "argmin": arg(xp.argmin)}
