"""Reductions and statistics: sum mean max min prod argmax argmin var std logsumexp."""
from __future__ import annotations

from typing import Any

from plugrad.core import dtypes
from plugrad.core.dispatch import apply
from plugrad.core.tensor import Tensor
from plugrad.functional._utils import (
    as_tensor,
    normalize_axes,
    normalize_axis,
    reduced_count,
    to_float,
)

__all__ = ["sum", "mean", "max", "min", "prod", "argmax", "argmin", "var", "std", "logsumexp",
           "norm", "normalize"]


def _reduce(op: str, x: Any, axis: Any, keepdims: bool) -> Tensor:
    x = as_tensor(x)
    axes = normalize_axes(op, axis, x.ndim)
    if op in ("max", "min") and x.size == 0:
        raise ValueError(f"{op}: cannot reduce an empty tensor of shape {x.shape}; it has no "
                         f"{'maximum' if op == 'max' else 'minimum'}")
    return apply(op, x, axis=axes, keepdims=bool(keepdims))


def sum(inp: Tensor, axis: Any = None, keepdims: bool = False) -> Tensor:  # noqa: A001
    """Sum over ``axis`` (int, tuple or None for all); booleans count as int32."""
    inp = as_tensor(inp)
    if inp._dtype == dtypes.bool_:
        inp = apply("cast", inp, dtype=dtypes.int32)
    return _reduce("sum", inp, axis, keepdims)


def prod(inp: Tensor, axis: Any = None, keepdims: bool = False) -> Tensor:
    """Product over ``axis``."""
    inp = as_tensor(inp)
    if inp._dtype == dtypes.bool_:
        inp = apply("cast", inp, dtype=dtypes.int32)
    return _reduce("prod", inp, axis, keepdims)


def max(inp: Tensor, axis: Any = None, keepdims: bool = False) -> Tensor:  # noqa: A001
    """Maximum over ``axis``; the gradient is shared equally between tied maxima."""
    return _reduce("max", inp, axis, keepdims)


def min(inp: Tensor, axis: Any = None, keepdims: bool = False) -> Tensor:  # noqa: A001
    """Minimum over ``axis``."""
    return _reduce("min", inp, axis, keepdims)


def mean(inp: Tensor, axis: Any = None, keepdims: bool = False) -> Tensor:
    """Arithmetic mean over ``axis``; integer input gives float32."""
    x = to_float(as_tensor(inp))
    axes = normalize_axes("mean", axis, x.ndim)
    if reduced_count(x.shape, axes):
        return apply("mean", x, axis=axes, keepdims=bool(keepdims))
    return apply("sum", x, axis=axes, keepdims=bool(keepdims)) / 0.0  # nothing reduced: nan


def var(inp: Tensor, axis: Any = None, keepdims: bool = False) -> Tensor:
    """Population variance, ``mean((x - mean(x))**2)``."""
    x = to_float(as_tensor(inp))
    centered = x - mean(x, axis, keepdims=True)
    return mean(centered * centered, axis, keepdims)


def std(inp: Tensor, axis: Any = None, keepdims: bool = False) -> Tensor:
    """Population standard deviation."""
    return apply("sqrt", var(inp, axis, keepdims))


def norm(inp: Tensor, ord: float = 2.0, axis: Any = None, keepdims: bool = False) -> Tensor:
    """The ``ord``-norm over ``axis`` (2 by default)."""
    x = to_float(as_tensor(inp))
    if ord == 2:
        return apply("sqrt", sum(x * x, axis, keepdims))
    if ord == 1:
        return sum(apply("abs", x), axis, keepdims)
    return sum(apply("abs", x) ** ord, axis, keepdims) ** (1.0 / ord)


def normalize(inp: Tensor, ord: float | None = None, axis: Any = None,
              eps: float = 1e-12) -> Tensor:
    """``inp / max(norm(inp, ord, axis), eps)``: slices of unit ``ord``-norm (2 by default).

    Example:
        >>> normalize(Tensor([3.0, 4.0])).numpy()
        array([0.6, 0.8], dtype=float32)
    """
    x = to_float(as_tensor(inp))
    ord = 2.0 if ord is None else ord
    if isinstance(ord, bool) or not isinstance(ord, (int, float)):
        raise TypeError(f"normalize: ord must be a number; got {type(ord).__name__} {ord!r}")
    if not ord > 0:
        raise ValueError(f"normalize: ord must be positive; got {ord}")
    if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not eps > 0:
        raise ValueError(f"normalize: eps must be a positive number; got {eps!r}")
    length = norm(x, ord, axis, keepdims=True)
    return x / apply("maximum", length, as_tensor(eps, length))


def _arg(op: str, inp: Any, axis: Any, keepdims: bool) -> Tensor:
    x = as_tensor(inp)
    if x.size == 0:
        raise ValueError(f"{op}: cannot take {op} of an empty tensor of shape {x.shape}")
    if axis is not None:
        axis = normalize_axis(op, axis, x.ndim)
    return apply(op, x, axis=axis, keepdims=bool(keepdims))


def argmax(inp: Tensor, axis: int | None = None, keepdims: bool = False) -> Tensor:
    """Index (int32) of the maximum along ``axis``, of the flattened tensor if None."""
    return _arg("argmax", inp, axis, keepdims)


def argmin(inp: Tensor, axis: int | None = None, keepdims: bool = False) -> Tensor:
    """Index (int32) of the minimum along ``axis``."""
    return _arg("argmin", inp, axis, keepdims)


def logsumexp(inp: Tensor, axis: Any, keepdims: bool = False) -> Tensor:
    """``log(sum(exp(x), axis))`` without overflow."""
    x = to_float(as_tensor(inp))
    axes = normalize_axes("logsumexp", axis, x.ndim)
    return apply("logsumexp", x, axis=axes, keepdims=bool(keepdims))
