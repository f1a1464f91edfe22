"""Elementwise arithmetic, math, comparison and logical functions (MegEngine's names)."""
from __future__ import annotations

from typing import Any

from plugrad.core import dtypes
from plugrad.core.dispatch import apply, binary, check, promote_pair
from plugrad.core.tensor import Tensor
from plugrad.functional._utils import as_tensor, to_float

__all__ = [
    "add", "sub", "mul", "div", "floor_div", "mod", "pow", "neg", "abs", "sign", "exp", "log",
    "log1p", "sqrt", "square", "sin", "cos", "tanh", "sigmoid", "relu", "maximum", "minimum",
    "clip", "floor", "ceil", "round", "equal", "not_equal", "less", "less_equal", "greater",
    "greater_equal", "logical_and", "logical_or", "logical_not", "logical_xor", "where", "astype",
]


def add(x: Any, y: Any) -> Tensor:
    """``x + y`` with broadcasting."""
    return binary("add", x, y)


def sub(x: Any, y: Any) -> Tensor:
    """``x - y`` with broadcasting."""
    return binary("sub", x, y)


def mul(x: Any, y: Any) -> Tensor:
    """``x * y`` with broadcasting."""
    return binary("mul", x, y)


def div(x: Any, y: Any) -> Tensor:
    """True division; integers divide to float32 (``Tensor([1]) / 2`` is 0.5)."""
    x, y = promote_pair("div", x, y)
    if x._dtype.kind != "f":
        x, y = to_float(x), to_float(y)
    return binary("div", x, y)


def floor_div(x: Any, y: Any) -> Tensor:
    """``x // y``, rounding towards negative infinity."""
    return binary("floor_div", x, y)


def mod(x: Any, y: Any) -> Tensor:
    """``x % y`` with the sign of ``y`` (Python's convention)."""
    return binary("mod", x, y)


def pow(x: Any, y: Any) -> Tensor:  # noqa: A001 - MegEngine's name
    """``x ** y``."""
    return binary("pow", x, y)


def maximum(x: Any, y: Any) -> Tensor:
    """Elementwise maximum."""
    return binary("maximum", x, y)


def minimum(x: Any, y: Any) -> Tensor:
    """Elementwise minimum."""
    return binary("minimum", x, y)


def _numeric(op: str, x: Any) -> Tensor:
    x = as_tensor(x)
    check(op, x)  # bools have no sign
    return apply(op, x)


def neg(x: Tensor) -> Tensor:
    return _numeric("neg", x)


def abs(x: Tensor) -> Tensor:  # noqa: A001
    return _numeric("abs", x)


def sign(x: Tensor) -> Tensor:
    return _numeric("sign", x)


def _real(op: str, x: Any) -> Tensor:
    return apply(op, to_float(as_tensor(x)))


def exp(x: Tensor) -> Tensor:
    return _real("exp", x)


def log(x: Tensor) -> Tensor:
    return _real("log", x)


def log1p(x: Tensor) -> Tensor:
    return _real("log1p", x)


def sqrt(x: Tensor) -> Tensor:
    return _real("sqrt", x)


def sin(x: Tensor) -> Tensor:
    return _real("sin", x)


def cos(x: Tensor) -> Tensor:
    return _real("cos", x)


def tanh(x: Tensor) -> Tensor:
    return _real("tanh", x)


def sigmoid(x: Tensor) -> Tensor:
    """``1 / (1 + exp(-x))``, computed without overflow."""
    return _real("sigmoid", x)


def relu(x: Tensor) -> Tensor:
    """``max(x, 0)``."""
    return apply("relu", as_tensor(x))


def square(x: Tensor) -> Tensor:
    x = as_tensor(x)
    return apply("mul", x, x)


def _integral_or(op: str, x: Any) -> Tensor:
    x = as_tensor(x)
    if x._dtype.kind != "f":  # already integral: rounding changes nothing
        return apply("copy", x)
    return apply(op, x)


def floor(x: Tensor) -> Tensor:
    return _integral_or("floor", x)


def ceil(x: Tensor) -> Tensor:
    return _integral_or("ceil", x)


def round(x: Tensor) -> Tensor:  # noqa: A001
    """Round half away from zero (2.5 -> 3, -2.5 -> -3), as C and MegEngine do."""
    return _integral_or("round", x)


def clip(x: Tensor, lower: Any = None, upper: Any = None) -> Tensor:
    """Clamp into ``[lower, upper]``; either bound may be None."""
    if lower is None and upper is None:
        raise ValueError("clip: at least one of lower and upper must be given")
    x = as_tensor(x)
    if lower is not None:
        x = maximum(x, lower)
    if upper is not None:
        x = minimum(x, upper)
    return x


def equal(x: Any, y: Any) -> Tensor:
    return binary("eq", x, y)


def not_equal(x: Any, y: Any) -> Tensor:
    return binary("ne", x, y)


def less(x: Any, y: Any) -> Tensor:
    return binary("lt", x, y)


def less_equal(x: Any, y: Any) -> Tensor:
    return binary("le", x, y)


def greater(x: Any, y: Any) -> Tensor:
    return binary("gt", x, y)


def greater_equal(x: Any, y: Any) -> Tensor:
    return binary("ge", x, y)


def _logical(op: str, x: Any, y: Any) -> Tensor:
    like = x if isinstance(x, Tensor) else y
    return binary(op, as_tensor(x, like), as_tensor(y, like))


def logical_and(x: Any, y: Any) -> Tensor:
    return _logical("logical_and", x, y)


def logical_or(x: Any, y: Any) -> Tensor:
    return _logical("logical_or", x, y)


def logical_xor(x: Any, y: Any) -> Tensor:
    return _logical("logical_xor", x, y)


def logical_not(x: Tensor) -> Tensor:
    x = as_tensor(x)
    check("logical_not", x)
    return apply("logical_not", x)


def where(mask: Tensor, x: Any, y: Any) -> Tensor:
    """Pick ``x`` where ``mask`` is true, else ``y`` (all three broadcast together)."""
    mask = as_tensor(mask)
    if not isinstance(x, Tensor) and not isinstance(y, Tensor):
        x = as_tensor(x, mask)
    x, y = promote_pair("where", x, y)
    check("where", mask, x, y)
    return apply("where", mask, x, y)


def astype(x: Tensor, dtype: Any) -> Tensor:
    """A copy of ``x`` converted to ``dtype``."""
    target = dtypes.as_dtype(dtype)
    device = x._device
    if target.name not in device.type.dtypes:
        raise TypeError(f"astype: backend {device.backend!r} (device {device.logical}) does not "
                        f"support dtype {target.name}; supported: {', '.join(device.type.dtypes)}")
    return apply("cast", x, dtype=target)
