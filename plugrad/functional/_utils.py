"""Argument normalisation shared by the functional modules (strict primitives, lenient front)."""
from __future__ import annotations

import functools
import math
import operator
from typing import Any, Callable, Sequence

import numpy as np

from plugrad.core import dispatch, dtypes
from plugrad.core.device import get_device
from plugrad.core.dispatch import apply, as_tensor_like, promote_pair
from plugrad.core.tensor import Tensor, wrap

__all__ = ["as_tensor", "normalize_axes", "normalize_axis", "reduced_count", "sum_to", "to_float",
           "shape_tuple", "pair", "float_pair", "check_shape_without_axis", "check_index_range"]


def as_tensor(value: Any, like: Tensor | None = None, dtype: Any = None) -> Tensor:
    """``value`` as a Tensor; non-tensors go to ``like``'s device (or the default device)."""
    if isinstance(value, Tensor):
        return value
    if like is not None:
        return as_tensor_like(value, like, None if dtype is None else dtypes.as_dtype(dtype))
    return Tensor(value, dtype=dtype)


def to_float(x: Tensor) -> Tensor:
    """Integers and booleans become float32 for ops whose result is real-valued."""
    if x._dtype.kind == "f":
        return x
    return apply("cast", x, dtype=dtypes.float32)


def normalize_axis(op: str, axis: Any, ndim: int) -> int:
    """A single axis in ``[0, ndim)``, or a ValueError naming the op and the rank."""
    try:
        axis = int(axis)
    except TypeError:
        raise TypeError(f"{op}: axis must be an int, got {type(axis).__name__}") from None
    if not -ndim <= axis < ndim:
        raise ValueError(f"{op}: axis {axis} is out of range for a tensor of {ndim} dimension(s); "
                         f"expected {-ndim} <= axis < {ndim}" if ndim else
                         f"{op}: axis {axis} given for a 0-d tensor, which has no axes")
    return axis % ndim


def normalize_axes(op: str, axis: Any, ndim: int) -> tuple[int, ...] | None:
    """``None`` (all axes) or a sorted tuple of distinct axes."""
    if axis is None:
        return None
    if isinstance(axis, (list, tuple)):
        axes = tuple(sorted(normalize_axis(op, a, ndim) for a in axis))
        if len(set(axes)) != len(axes):
            raise ValueError(f"{op}: repeated axis in {axis}")
        return axes
    return (normalize_axis(op, axis, ndim),)


def reduced_count(shape: Sequence[int], axes: Sequence[int] | None) -> int:
    """How many elements a reduction over ``axes`` (``None``: all) combines into each result."""
    return math.prod(shape) if axes is None else math.prod(shape[a] for a in axes)


def check_shape_without_axis(op: str, name: str, index: Tensor, source_name: str, source: Tensor,
                             axis: int) -> None:
    """``index`` must have ``source``'s shape without ``axis`` (a class index per position)."""
    expected = source.shape[:axis] + source.shape[axis + 1:]
    if tuple(index.shape) != expected:
        raise ValueError(f"{op}: {name} shape {index.shape} must be {source_name} shape "
                         f"{source.shape} without axis {axis}, i.e. {expected}")


def check_index_range(op: str, name: str, index: Tensor, size: int) -> None:
    """Refuse integer indices outside ``[0, size)`` with an IndexError naming the op.

    NumPy would wrap -1 to the last class silently (and an index past the end fails deep in a
    kernel, or not at all for one_hot). Two reduction kernels and one host read per call: cheap
    next to the op that consumes the indices. While ``jit.trace`` records, the check becomes a
    step of the traced program, so every replay checks its own indices as eager code does.
    """
    if not index.size:
        return
    device = index._device
    kernels = device.kernels
    bound = (op, name, size, kernels["min"], kernels["max"], device.type.to_host)
    if dispatch.tracer is None:
        _refuse_out_of_range(*bound, index._data)
    else:
        dispatch.tracer.guard(index, functools.partial(_refuse_out_of_range, *bound))


def _refuse_out_of_range(op: str, name: str, size: int, minimum: Callable, maximum: Callable,
                         to_host: Callable, indices: Any) -> None:
    """The check itself, on a backend array: kernels find the extremes, the host compares."""
    low = to_host(minimum(indices, axis=None, keepdims=False)).item()
    high = to_host(maximum(indices, axis=None, keepdims=False)).item()
    if low < 0 or high >= size:
        bad = low if low < 0 else high
        raise IndexError(f"{op}: {name} {bad} is out of range; expected values in [0, {size}) "
                         f"(got values from {low} to {high})")


def shape_tuple(op: str, shape: Any) -> tuple[int, ...]:
    """A shape given as an int, a sequence of ints or a 1-D integer tensor."""
    if isinstance(shape, Tensor):
        shape = shape.tolist()
    if isinstance(shape, (int, np.integer)):
        return (int(shape),)
    try:  # operator.index, not int(): 3.7 must not become 3 silently
        return tuple(operator.index(s) for s in shape)
    except TypeError:
        raise TypeError(f"{op}: shape must be an int or a sequence of ints, got {shape!r}; "
                        f"round a computed size with int() first") from None


def sum_to(g: Tensor, shape: Sequence[int]) -> Tensor:
    """Sum a broadcast gradient back to ``shape`` (the one helper every vjp uses)."""
    shape = tuple(shape)
    g_shape = g._data.shape
    if g_shape == shape:
        return g
    lead = len(g_shape) - len(shape)
    axes = tuple(range(lead)) + tuple(
        lead + i for i, size in enumerate(shape) if size == 1 and g_shape[lead + i] != 1)
    if axes:
        g = apply("sum", g, axis=axes, keepdims=True)
    if g._data.shape != shape:
        g = apply("reshape", g, shape=shape)
    return g


def device_of(device: Any):
    return get_device(device)


def host_tensor(array: np.ndarray, like: Tensor) -> Tensor:
    """Move a host array onto ``like``'s device without a dtype change."""
    device = like._device
    return wrap(device.type.from_host(array, device.index), device)


def single(op: str, name: str, value: Any, minimum: int) -> int:
    """An int (or a 1-tuple of one) of at least ``minimum`` (a 1-D kernel size or stride)."""
    if isinstance(value, (tuple, list)) and len(value) == 1:
        value = value[0]
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{op}: {name} must be an int; got {value!r}")
    if value < minimum:
        raise ValueError(f"{op}: {name} must be at least {minimum}; got {value}")
    return value


def pair(op: str, name: str, value: Any, minimum: int = 0) -> tuple[int, int]:
    """An int or a pair of ints as ``(h, w)``, each at least ``minimum`` (kernel sizes, strides)."""
    if value.__class__ is int and value >= minimum:  # per-call fast paths: layers pass these
        return value, value
    if value.__class__ is tuple and len(value) == 2 and value[0].__class__ is int \
            and value[1].__class__ is int and value[0] >= minimum and value[1] >= minimum:
        return value
    values = (value, value) if isinstance(value, (int, np.integer)) else tuple(value) \
        if isinstance(value, (tuple, list)) else None
    if values is None or len(values) != 2 \
            or not all(isinstance(v, (int, np.integer)) for v in values):
        raise TypeError(f"{op}: {name} must be an int or a pair of ints; got {value!r}")
    if any(v < minimum for v in values):
        raise ValueError(f"{op}: {name} must be at least {minimum}; got {value!r}")
    return int(values[0]), int(values[1])


def float_pair(op: str, x: Any, y: Any) -> tuple[Tensor, Tensor]:
    """Two tensors of one floating dtype (an input and its weights)."""
    x, y = promote_pair(op, x, y)
    if x._dtype.kind != "f":
        x, y = to_float(x), to_float(y)
    return x, y
