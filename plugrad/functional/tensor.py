"""Creation, shape manipulation and indexing."""
from __future__ import annotations

import builtins
from typing import Any, Sequence

import numpy as np

from plugrad.core import dtypes
from plugrad.core.device import get_device
from plugrad.core.dispatch import apply, check, check_broadcast, create, promote_pair
from plugrad.core.tensor import Tensor, wrap
from plugrad.functional._utils import (
    as_tensor,
    check_index_range,
    host_tensor,
    normalize_axis,
    shape_tuple,
)

__all__ = [
    "arange", "ones", "zeros", "full", "ones_like", "zeros_like", "full_like", "linspace",
    "reshape", "flatten", "transpose", "broadcast_to", "expand_dims", "squeeze", "concat",
    "stack", "split", "gather", "scatter_add", "copy", "getitem", "setitem", "pad",
]


def _dtype_for(device, dtype: Any, op: str) -> np.dtype:
    target = dtypes.as_dtype(dtype)
    if target.name not in device.type.dtypes:
        raise TypeError(f"{op}: backend {device.backend!r} (device {device.logical}) does not "
                        f"support dtype {target.name}; supported: {', '.join(device.type.dtypes)}")
    return target


# -- creation -------------------------------------------------------------------------------
def full(shape: Any, value: Any, dtype: Any = "float32", device: Any = None) -> Tensor:
    """A tensor of ``shape`` filled with ``value``."""
    dev = get_device(device)
    shape = shape_tuple("full", shape)
    if builtins.any(s < 0 for s in shape):
        raise ValueError(f"full: shape {shape} has a negative dimension")
    return create("full", dev, shape=shape, value=value, dtype=_dtype_for(dev, dtype, "full"))


def ones(shape: Any, dtype: Any = "float32", device: Any = None) -> Tensor:
    return full(shape, 1, dtype, device)


def zeros(shape: Any, dtype: Any = "float32", device: Any = None) -> Tensor:
    return full(shape, 0, dtype, device)


def full_like(inp: Tensor, value: Any) -> Tensor:
    """Same shape, dtype and device as ``inp``, filled with ``value``."""
    return create("full", inp._device, shape=inp._data.shape, value=value, dtype=inp._dtype)


def ones_like(inp: Tensor) -> Tensor:
    return full_like(inp, 1)


def zeros_like(inp: Tensor) -> Tensor:
    return full_like(inp, 0)


def arange(start: float = 0, stop: float | None = None, step: float = 1,
           dtype: Any = "float32", device: Any = None) -> Tensor:
    """Evenly spaced values in ``[start, stop)``; ``arange(5)`` is ``[0. 1. 2. 3. 4.]``."""
    if stop is None:
        start, stop = 0, start
    if step == 0:
        raise ValueError("arange: step must not be zero")
    dev = get_device(device)
    return create("arange", dev, start=start, stop=stop, step=step,
                  dtype=_dtype_for(dev, dtype, "arange"))


def linspace(start: float, stop: float, num: int, dtype: Any = "float32",
             device: Any = None) -> Tensor:
    """``num`` evenly spaced values from ``start`` to ``stop`` inclusive."""
    values = np.linspace(start, stop, int(num))
    return Tensor(values, dtype=dtype, device=device)


# -- shape ----------------------------------------------------------------------------------
def reshape(inp: Tensor, target_shape: Any) -> Tensor:
    """The same elements in a new shape; one dimension may be -1."""
    inp = as_tensor(inp)
    shape = list(shape_tuple("reshape", target_shape))
    unknown = [i for i, s in enumerate(shape) if s == -1]
    size = inp.size
    known = 1
    for s in shape:
        if s != -1:
            known *= s
    if len(unknown) > 1 or builtins.any(s < -1 for s in shape):
        raise ValueError(f"reshape: target shape {tuple(shape)} may contain one -1 and no other "
                         f"negative size")
    if unknown:
        if known == 0 or size % known:
            raise ValueError(f"reshape: cannot reshape a tensor of shape {inp.shape} ({size} "
                             f"elements) into {tuple(shape)}")
        shape[unknown[0]] = size // known
    elif known != size:
        raise ValueError(f"reshape: cannot reshape a tensor of shape {inp.shape} ({size} "
                         f"elements) into {tuple(shape)} ({known} elements)")
    target = tuple(shape)
    if target == inp._data.shape:
        return inp
    return apply("reshape", inp, shape=target)


def flatten(inp: Tensor, start_axis: int = 0, end_axis: int = -1) -> Tensor:
    """Merge axes ``start_axis..end_axis`` into one."""
    inp = as_tensor(inp)
    if inp.ndim == 0:
        return reshape(inp, (1,))
    start = normalize_axis("flatten", start_axis, inp.ndim)
    end = normalize_axis("flatten", end_axis, inp.ndim)
    shape = inp.shape
    merged = 1
    for s in shape[start:end + 1]:
        merged *= s
    target = shape[:start] + (merged,) + shape[end + 1:]
    # The target comes from the tensor's own shape: nothing for reshape() to validate.
    return inp if target == shape else apply("reshape", inp, shape=target)


def transpose(inp: Tensor, pattern: Sequence[int] | None = None) -> Tensor:
    """Permute axes by ``pattern`` (reverse them if None)."""
    inp = as_tensor(inp)
    ndim = inp.ndim
    perm = tuple(range(ndim - 1, -1, -1)) if pattern is None else tuple(
        normalize_axis("transpose", p, ndim) for p in pattern)
    check("transpose", inp, perm=perm)
    if perm == tuple(range(ndim)):
        return inp
    return apply("transpose", inp, perm=perm)


def broadcast_to(inp: Tensor, shape: Any) -> Tensor:
    """``inp`` repeated along size-1 or missing leading axes to ``shape``."""
    inp = as_tensor(inp)
    shape = shape_tuple("broadcast_to", shape)
    check("broadcast_to", inp, shape=shape)
    if shape == inp._data.shape:
        return inp
    return apply("broadcast_to", inp, shape=shape)


def expand_dims(inp: Tensor, axis: int | Sequence[int]) -> Tensor:
    """Insert size-1 axes at ``axis`` (positions in the result)."""
    inp = as_tensor(inp)
    axes = [axis] if isinstance(axis, (int, np.integer)) else list(axis)
    out_ndim = inp.ndim + len(axes)
    axes = sorted(normalize_axis("expand_dims", a, out_ndim) for a in axes)
    shape = list(inp.shape)
    for a in axes:
        shape.insert(a, 1)
    return reshape(inp, tuple(shape))


def squeeze(inp: Tensor, axis: int | Sequence[int] | None = None) -> Tensor:
    """Remove size-1 axes (all of them, or those named)."""
    inp = as_tensor(inp)
    if axis is None:
        axes = [i for i, s in enumerate(inp.shape) if s == 1]
    else:
        axes = [axis] if isinstance(axis, (int, np.integer)) else list(axis)
        axes = [normalize_axis("squeeze", a, inp.ndim) for a in axes]
        bad = [a for a in axes if inp.shape[a] != 1]
        if bad:
            raise ValueError(f"squeeze: axis {bad[0]} has size {inp.shape[bad[0]]}, not 1, in a "
                             f"tensor of shape {inp.shape}")
    return reshape(inp, tuple(s for i, s in enumerate(inp.shape) if i not in axes))


def concat(inps: Sequence[Tensor], axis: int = 0, device: Any = None) -> Tensor:
    """Join tensors along an existing axis."""
    tensors = list(inps)
    if not tensors:
        raise ValueError("concat: needs at least one tensor")
    first = next((t for t in tensors if isinstance(t, Tensor)), None)
    tensors = [as_tensor(t, first) for t in tensors]
    target = tensors[0]._dtype
    for t in tensors[1:]:
        target = dtypes.promote(target, t._dtype)
    tensors = [t if t._dtype == target else apply("cast", t, dtype=target) for t in tensors]
    axis = normalize_axis("concat", axis, tensors[0].ndim)
    check("concat", *tensors, axis=axis)
    if device is not None:
        tensors = [t.to(device) for t in tensors]
    if len(tensors) == 1:
        return copy(tensors[0])
    return apply("concat", *tensors, axis=axis)


def stack(inps: Sequence[Tensor], axis: int = 0, device: Any = None) -> Tensor:
    """Join same-shape tensors along a new axis."""
    tensors = list(inps)
    if not tensors:
        raise ValueError("stack: needs at least one tensor")
    shapes = {tuple(as_tensor(t).shape) for t in tensors}
    if len(shapes) != 1:
        raise ValueError(f"stack: all tensors must have one shape; got {sorted(shapes)}")
    ndim = len(next(iter(shapes))) + 1
    axis = normalize_axis("stack", axis, ndim)
    return concat([expand_dims(t, axis) for t in tensors], axis, device)


def split(inp: Tensor, nsplits_or_sections: int | Sequence[int], axis: int = 0) -> list[Tensor]:
    """Split into ``n`` equal parts, or at the given section indices."""
    inp = as_tensor(inp)
    axis = normalize_axis("split", axis, inp.ndim)
    size = inp.shape[axis]
    if isinstance(nsplits_or_sections, (int, np.integer)):
        parts = int(nsplits_or_sections)
        if parts <= 0 or size % parts:
            raise ValueError(f"split: cannot split axis {axis} of size {size} into {parts} equal "
                             f"parts")
        bounds = [i * (size // parts) for i in range(parts + 1)]
    else:
        sections = [int(s) for s in nsplits_or_sections]
        if sections != sorted(sections) or builtins.any(s < 0 or s > size for s in sections):
            raise ValueError(f"split: sections {sections} must be increasing within [0, {size}]")
        bounds = [0] + sections + [size]
    prefix = (slice(None),) * axis
    return [getitem(inp, prefix + (slice(a, b),)) for a, b in zip(bounds[:-1], bounds[1:])]


def _index_tensor(op: str, index: Any, like: Tensor) -> Tensor:
    index = as_tensor(index, like)
    if index._dtype.kind not in "iu":
        raise TypeError(f"{op}: index must be an integer tensor, got {index._dtype}")
    if index._dtype != dtypes.int32:
        index = apply("cast", index, dtype=dtypes.int32)
    return index


def gather(inp: Tensor, axis: int, index: Tensor) -> Tensor:
    """``out[i][j] = inp[index[i][j]][j]`` for ``axis=0`` (take along an axis)."""
    inp = as_tensor(inp)
    index = _index_tensor("gather", index, inp)
    axis = normalize_axis("gather", axis, inp.ndim)
    check("gather", inp, index, axis=axis)
    check_index_range("gather", "index", index, inp.shape[axis])
    return apply("gather", inp, index, axis=axis)


def scatter_add(inp: Tensor, axis: int, index: Tensor, source: Tensor) -> Tensor:
    """A copy of ``inp`` with ``source`` added at ``index`` along ``axis`` (gather's adjoint)."""
    inp = as_tensor(inp)
    index = _index_tensor("scatter_add", index, inp)
    axis = normalize_axis("scatter_add", axis, inp.ndim)
    inp, source = promote_pair("scatter_add", inp, source)
    check("scatter_add", inp, index, source, axis=axis)
    check_index_range("scatter_add", "index", index, inp.shape[axis])
    return apply("scatter_add", inp, index, source, axis=axis)


def copy(inp: Tensor, device: Any = None) -> Tensor:
    """A copy of ``inp``, on ``device`` if given (how data moves between devices)."""
    inp = as_tensor(inp)
    if device is None:
        return apply("copy", inp)
    target = get_device(device)
    source = inp._device
    if target.type is source.type and target.index == source.index:
        out = apply("copy", inp)
        return wrap(out._data, target) if out._node is None else out
    host = np.array(source.type.to_host(inp._data))
    return wrap(target.type.from_host(host, target.index), target)


_PAD_MODES = ("constant", "reflect", "replicate", "edge")


def pad(inp: Tensor, pad_width: Sequence[Sequence[int]], mode: str = "constant",
        constant_value: float = 0.0) -> Tensor:
    """Pad ``inp``; ``pad_width`` gives ``(before, after)`` for its leading axes (the rest 0).

    ``mode`` is ``"constant"`` (``constant_value``), ``"reflect"`` (mirrored about the edge
    element, which is not repeated) or ``"replicate"`` / ``"edge"`` (the edge element
    repeated), as MegEngine's ``F.nn.pad``. The two copying modes read the input at host-built
    positions (getitem), so their gradient sums back onto the positions copied.

    Example:
        >>> pad(Tensor([1.0, 2.0, 3.0]), ((2, 1),), mode="reflect").numpy()
        array([3., 2., 1., 2., 3., 2.], dtype=float32)
    """
    inp = as_tensor(inp)
    kind = mode.lower() if isinstance(mode, str) else mode
    if kind not in _PAD_MODES:
        raise ValueError(f"pad: mode must be one of {_PAD_MODES}; got {mode!r}")
    width = tuple((int(a), int(b)) for a, b in pad_width)
    if inp.ndim == 0 and not width:  # nothing to pad around a scalar
        return copy(inp)
    if len(width) > inp.ndim or builtins.any(a < 0 or b < 0 for a, b in width):
        raise ValueError(f"pad: pad_width {width} must give two non-negative sizes for at most "
                         f"the {inp.ndim} axes of shape {inp.shape}")
    width += ((0, 0),) * (inp.ndim - len(width))
    if kind == "constant":
        return apply("pad", inp, pad_width=width, value=constant_value)
    out = inp
    for axis, (before, after) in enumerate(width):
        if before or after:
            index = _copy_positions(kind, inp.shape[axis], before, after, axis, inp.shape)
            out = apply("getitem", out,
                        index=(slice(None),) * axis + (host_tensor(index, out)._data,))
    return out if out is not inp else copy(inp)


def _copy_positions(kind: str, size: int, before: int, after: int, axis: int,
                    shape: tuple) -> np.ndarray:
    """The input positions a reflect / replicate pad reads along one axis."""
    wanted = np.arange(-before, size + after)
    if kind in ("replicate", "edge"):
        if size == 0:
            raise ValueError(f"pad: cannot replicate the edge of the empty axis {axis} of shape "
                             f"{shape}")
        return np.clip(wanted, 0, size - 1).astype(np.int32)
    if before >= size or after >= size:
        raise ValueError(f"pad: reflect padding ({before}, {after}) on axis {axis} of shape "
                         f"{shape} must be smaller than the axis ({size}); use 'replicate' or "
                         f"a smaller pad")
    period = 2 * (size - 1)  # size > 1 here: a pad smaller than the axis
    folded = np.abs(wanted) % period
    return np.where(folded < size, folded, period - folded).astype(np.int32)


# -- indexing -------------------------------------------------------------------------------
def _normalize_index(x: Tensor, index: Any, op: str = "getitem") -> tuple:
    if not isinstance(index, tuple):
        index = (index,)
    device = x._device
    out: list[Any] = []  # ints, bools, slices, None, Ellipsis and device arrays
    for item in index:
        if item is None or item is Ellipsis or isinstance(item, slice):
            out.append(item)
        elif isinstance(item, (bool, np.bool_)):
            out.append(bool(item))
        elif isinstance(item, (int, np.integer)):
            out.append(int(item))
        elif isinstance(item, Tensor):
            if item.ndim == 0 and item._dtype.kind in "iu":
                out.append(int(item.item()))
                continue
            if item._device.physical != device.physical:
                item = copy(item, device)
            out.append(item._data)
        else:
            array = np.asarray(item)
            if array.dtype.kind not in "iub":
                raise TypeError(f"{op}: index {item!r} is not an int, slice, None, Ellipsis, "
                                f"or an integer/boolean array")
            out.append(device.type.from_host(array, device.index))
    return tuple(out)


def getitem(x: Tensor, index: Any) -> Tensor:
    """``x[index]`` with NumPy's rules: ints, slices, None, Ellipsis, masks, integer arrays."""
    return apply("getitem", x, index=_normalize_index(x, index))


def setitem(x: Tensor, index: Any, value: Any) -> Tensor:
    """A copy of ``x`` with ``x[index] = value`` (Tensor.__setitem__ rebinds to it)."""
    normalized = _normalize_index(x, index, "setitem")
    value = as_tensor(value, x)
    if value._dtype != x._dtype:
        value = apply("cast", value, dtype=x._dtype)
    try:
        target_shape = apply("getitem", x, index=normalized)._data.shape
    except (IndexError, ValueError, TypeError) as exc:
        raise type(exc)(str(exc).replace("getitem:", "setitem:", 1)) from None
    if check_broadcast("setitem", tuple(value.shape), target_shape) != target_shape:
        raise ValueError(f"setitem: cannot assign a value of shape {value.shape} to a selection "
                         f"of shape {target_shape}")
    return apply("setitem", x, value, index=normalized)
