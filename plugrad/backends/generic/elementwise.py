"""Elementwise primitives over an Array API namespace: most are the standard's own functions."""
from __future__ import annotations

from typing import Any, Callable

NEEDS = ("negative", "abs", "sign", "exp", "log", "log1p", "sqrt", "sin", "cos", "tanh",
         "floor", "ceil", "copysign", "logical_not", "add", "subtract", "multiply", "divide",
         "floor_divide", "remainder", "pow", "maximum", "minimum", "equal", "not_equal", "less",
         "less_equal", "greater", "greater_equal", "logical_and", "logical_or", "logical_xor",
         "where", "astype", "isdtype", "asarray", "bool")

_SAME_NAME = ("sign", "exp", "log", "log1p", "sqrt", "sin", "cos", "tanh", "floor", "ceil",
              "logical_not", "maximum", "minimum", "pow", "where", "logical_and", "logical_or",
              "logical_xor")
_RENAMED = {"neg": "negative", "sub": "subtract", "mul": "multiply",
            "div": "divide", "floor_div": "floor_divide", "mod": "remainder", "eq": "equal",
            "ne": "not_equal", "lt": "less", "le": "less_equal", "gt": "greater",
            "ge": "greater_equal"}


def kernels(xp: Any) -> dict[str, Callable]:
    def round_(x):
        # Halves away from zero (MegEngine's rule), not the standard's halves to even.
        if not xp.isdtype(x.dtype, "real floating"):
            return xp.asarray(x, copy=True)
        return xp.copysign(xp.floor(xp.abs(x) + 0.5), x)

    def cast(x, *, dtype):
        return xp.astype(x, dtype)

    # plugrad takes bools where NumPy does and the standard does not: x + y is "or",
    # abs(x) is x.
    def add(x, y):
        return xp.logical_or(x, y) if x.dtype == xp.bool else xp.add(x, y)

    def abs_(x):
        return xp.asarray(x, copy=True) if x.dtype == xp.bool else xp.abs(x)

    table = {name: getattr(xp, name) for name in _SAME_NAME}
    table.update({op: getattr(xp, name) for op, name in _RENAMED.items()})
    table.update({"round": round_, "cast": cast, "add": add, "abs": abs_})
    return table
