"""Sorting over an Array API namespace."""
from __future__ import annotations

from typing import Any, Callable

NEEDS = ("argsort", "flip", "astype", "int8", "int32", "bool")


def kernels(xp: Any) -> dict[str, Callable]:
    def argsort(x, *, axis, descending):
        if x.dtype == xp.bool:  # NumPy's order, False < True; the standard sorts numbers
            x = xp.astype(x, xp.int8)
        if not descending:
            return xp.astype(xp.argsort(x, axis=axis, stable=True), xp.int32)
        # The reversed ascending order of the reversed input: descending, and equal values
        # still keep their order in x (negating x would break unsigned and bool inputs).
        order = xp.flip(xp.argsort(xp.flip(x, axis=axis), axis=axis, stable=True), axis=axis)
        return xp.astype(x.shape[axis] - 1 - order, xp.int32)

    return {"argsort": argsort}
