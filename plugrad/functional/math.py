"""Reductions and statistics: sum mean max min prod argmax argmin var std logsumexp."""
from __future__ import annotations

import math
from typing import Any

from plugrad.core import dtypes
from plugrad.core.dispatch import apply, check
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
    attrs = dict(axis=normalize_axes(op, axis, x.ndim), keepdims=bool(keepdims))
    check(op, x, **attrs)
    return apply(op, x, **attrs)


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


def norm(inp: Tensor, ord: float | None = None, axis: Any = None,
         keepdims: bool = False) -> Tensor:
    """The ``ord``-norm over ``axis``: ``sum(|x|**ord) ** (1 / ord)``, 2 when ``ord`` is None.

    ``ord`` may also be ``inf`` (largest magnitude), ``-inf`` (smallest) or 0 (the number of
    non-zero elements), as in MegEngine.
    """
    x = to_float(as_tensor(inp))
    ord = 2 if ord is None else ord
    if isinstance(ord, bool) or not isinstance(ord, (int, float)) or math.isnan(ord):
        raise TypeError(f"norm: ord must be a number, inf or -inf; got "
                        f"{type(ord).__name__} {ord!r}")
    if ord == 2:
        return apply("sqrt", sum(x * x, axis, keepdims))
    if ord == 0:
        return sum(apply("cast", x != 0, dtype=x._dtype), axis, keepdims)
    magnitude = apply("abs", x)
    if ord == math.inf:
        return max(magnitude, axis, keepdims)
    if ord == -math.inf:
        return min(magnitude, axis, keepdims)
    if ord == 1:
        return sum(magnitude, axis, keepdims)
    return sum(magnitude ** ord, axis, keepdims) ** (1.0 / ord)


def normalize(inp: Tensor, ord: float | None = None, axis: int | None = None,
              eps: float = 1e-12) -> Tensor:
    """``inp / max(norm(inp, ord, axis), eps)``: slices of unit ``ord``-norm (2 by default).

    Args:
        inp: the tensor; a vector when ``axis`` is None (MegEngine's rule).
        ord: as :func:`norm`.
        axis: the axis whose slices are normalised.
        eps: the smallest norm divided by, so zero slices stay zero.

    Example:
        >>> normalize(Tensor([3.0, 4.0])).numpy()
        array([0.6, 0.8], dtype=float32)
    """
    x = to_float(as_tensor(inp))
    if axis is None and x.ndim != 1:
        raise ValueError(f"normalize: axis is required unless the input is a vector; got shape "
                         f"{tuple(x.shape)} with axis=None; pass axis=")
    if axis is not None:
        axis = normalize_axis("normalize", axis, x.ndim)
    if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not eps >= 0:
        raise ValueError(f"normalize: eps must be a non-negative number; got {eps!r}")
    length = norm(x, ord, axis, keepdims=True)
    return x / apply("maximum", length, as_tensor(eps, length))


def _arg(op: str, inp: Any, axis: Any, keepdims: bool) -> Tensor:
    x = as_tensor(inp)
    attrs = dict(axis=None if axis is None else normalize_axis(op, axis, x.ndim),
                 keepdims=bool(keepdims))
    check(op, x, **attrs)
    return apply(op, x, **attrs)


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
