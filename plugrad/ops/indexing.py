"""Indexing primitives: getitem, setitem, index_add, gather, scatter_add."""
from __future__ import annotations

from typing import Any

import numpy as np

from plugrad import functional as F
from plugrad.core.dispatch import apply, check_broadcast
from plugrad.core.registry import Spec, primitive
from plugrad.functional._utils import sum_to
from plugrad.ops._rules import need_kind, need_same_dtype


def _getitem_vjp(ctx, g):
    zeros = F.zeros_like(ctx.inputs[0])
    return (apply("index_add", zeros, g, index=ctx.attrs["index"]),)


def _setitem_vjp(ctx, g):
    index = ctx.attrs["index"]
    x, value = ctx.inputs
    gx = apply("setitem", g, F.zeros_like(value), index=index) if ctx.needs[0] else None
    gv = sum_to(apply("getitem", g, index=index), value.shape) if ctx.needs[1] else None
    return gx, gv


def _index_add_vjp(ctx, g):
    value = ctx.saved[1]
    gv = sum_to(apply("getitem", g, index=ctx.attrs["index"]), value.shape) \
        if ctx.needs[1] else None
    return g, gv


def _gather_vjp(ctx, g):
    x, index = ctx.inputs
    return apply("scatter_add", F.zeros_like(x), index, g, axis=ctx.attrs["axis"]), None


def _scatter_add_vjp(ctx, g):
    _, index, _ = ctx.inputs
    gv = apply("gather", g, index, axis=ctx.attrs["axis"]) if ctx.needs[2] else None
    return g, None, gv


# -- rules and references ---------------------------------------------------------------------
def _selection(op: str, x: Any, index: tuple) -> tuple[int, ...]:
    """The shape ``x[index]`` has under NumPy's rules, found on a zero-stride stand-in of x.

    Integer index arrays that are not host arrays stand in as zeros of their shape; a boolean
    mask must be a host array (what it selects depends on its values).
    """
    stand_in = np.broadcast_to(np.empty((), dtype=x.dtype), tuple(x.shape))
    host = tuple(i if isinstance(i, np.ndarray) or not hasattr(i, "dtype")
                 else np.zeros(tuple(i.shape), dtype=np.intp) for i in index)
    try:
        return stand_in[host].shape
    except (IndexError, TypeError) as exc:
        raise type(exc)(f"{op}: index {index!r} does not apply to shape {tuple(x.shape)}: "
                        f"{exc}") from None


def _getitem_rule(x: Any, *, index: tuple) -> Spec:
    return Spec(_selection("getitem", x, index), x.dtype)


def _getitem_reference(x, *, index):
    return np.asarray(x[index])


def _write_rule(op: str):
    def rule(x: Any, value: Any, *, index: tuple) -> Spec:
        need_same_dtype(op, ("x", x), ("value", value))
        target = _selection(op, x, index)
        value_shape = tuple(value.shape)
        if value_shape != target and check_broadcast(op, value_shape, target) != target:
            raise ValueError(f"{op}: a value of shape {value_shape} does not broadcast to the "
                             f"selection's shape {target}")
        return Spec(tuple(x.shape), x.dtype)

    return rule


def _setitem_reference(x, value, *, index):
    out = np.array(x, copy=True)
    out[index] = value
    return out


def _index_add_reference(x, value, *, index):
    out = np.array(x, copy=True)
    np.add.at(out, index, value)
    return out


def _check_index(op: str, x: Any, index: Any, axis: int) -> None:
    need_kind(op, "indices", index, "iu", "cast them with astype('int32')")
    shape, index_shape = tuple(x.shape), tuple(index.shape)
    if not 0 <= axis < len(shape):
        raise ValueError(f"{op}: axis {axis} is out of range for shape {shape}")
    if len(index_shape) != len(shape) or any(
            i > s for j, (i, s) in enumerate(zip(index_shape, shape)) if j != axis):
        raise ValueError(f"{op}: index shape {index_shape} must have the rank of the input "
                         f"{shape} and not exceed it outside axis {axis}")


def _gather_rule(x: Any, index: Any, *, axis: int) -> Spec:
    _check_index("gather", x, index, axis)
    return Spec(tuple(index.shape), x.dtype)


def _gather_reference(x, index, *, axis):
    return np.take_along_axis(x, np.asarray(index).astype(np.intp), axis=axis)


def _scatter_add_rule(x: Any, index: Any, value: Any, *, axis: int) -> Spec:
    _check_index("scatter_add", x, index, axis)
    need_same_dtype("scatter_add", ("x", x), ("value", value))
    if tuple(value.shape) != tuple(index.shape):
        raise ValueError(f"scatter_add: source shape {tuple(value.shape)} must equal index "
                         f"shape {tuple(index.shape)}")
    return Spec(tuple(x.shape), x.dtype)


def _scatter_add_reference(x, index, value, *, axis):
    out = np.array(x, copy=True)
    grid = list(np.indices(index.shape, sparse=True))
    grid[axis] = np.asarray(index).astype(np.intp)
    np.add.at(out, tuple(grid), value)
    return out


_INDEX = "index: tuple[int | slice | None | Ellipsis | array, ...]"
# Only index arrays are read as data; the other inputs' shapes and dtypes are enough.
primitive("getitem", f"x, *, {_INDEX}", rule=_getitem_rule, reference=_getitem_reference,
          vjp=_getitem_vjp, keep_inputs=(), keep_out=False,
          doc="`index` is a tuple of ints, slices, None, Ellipsis, bools and device arrays "
              "(int or bool), with NumPy's indexing rules; x's dtype")
primitive("setitem", f"x, value, *, {_INDEX}", rule=_write_rule("setitem"),
          reference=_setitem_reference, vjp=_setitem_vjp, keep_inputs=(), keep_out=False,
          doc="a new array: x with x[index] = value (value broadcasts to the selection); x is "
              "not modified")
primitive("index_add", f"x, value, *, {_INDEX}", rule=_write_rule("index_add"),
          reference=_index_add_reference, vjp=_index_add_vjp, keep_inputs=(), keep_out=False,
          doc="a new array: x with value added at index, repeated indices accumulating; x is "
              "not modified")
primitive("gather", "x, index, *, axis: int", rule=_gather_rule, reference=_gather_reference,
          vjp=_gather_vjp, keep_inputs=(1,), keep_out=False,
          doc="index is int32 with x's rank; out[i][j] = x[index[i][j]][j] for axis 0; x's dtype")
primitive("scatter_add", "x, index, value, *, axis: int", rule=_scatter_add_rule,
          reference=_scatter_add_reference, vjp=_scatter_add_vjp, keep_inputs=(1,),
          keep_out=False,
          doc="a new array: x plus value scattered at index along axis (gather's adjoint); x's "
              "dtype")
