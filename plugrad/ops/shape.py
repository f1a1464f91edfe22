"""Shape primitives (reshape, broadcast, transpose, pad, concat, copy): rules, references, vjps."""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from plugrad.core.dispatch import apply
from plugrad.core.registry import Spec, primitive
from plugrad.functional._utils import sum_to
from plugrad.ops._rules import need_same_dtype


def _reshape_vjp(ctx, g):
    return (apply("reshape", g, shape=ctx.saved[0].shape),)


def _broadcast_vjp(ctx, g):
    return (sum_to(g, ctx.saved[0].shape),)


def _transpose_vjp(ctx, g):
    perm = ctx.attrs["perm"]
    inverse = tuple(sorted(range(len(perm)), key=perm.__getitem__))
    return (apply("transpose", g, perm=inverse),)


def _pad_vjp(ctx, g):
    index = tuple(slice(before, before + size)
                  for (before, _), size in zip(ctx.attrs["pad_width"], ctx.saved[0].shape))
    return (apply("getitem", g, index=index),)


def _concat_vjp(ctx, g):
    axis = ctx.attrs["axis"]
    grads, start = [], 0
    for needed, x in zip(ctx.needs, ctx.saved):
        stop = start + x.shape[axis]
        index = (slice(None),) * axis + (slice(start, stop),)
        grads.append(apply("getitem", g, index=index) if needed else None)
        start = stop
    return tuple(grads)


# -- rules and references ---------------------------------------------------------------------
def _reshape_rule(x: Any, *, shape: tuple[int, ...]) -> Spec:
    if math.prod(shape) != math.prod(x.shape) or any(s < 0 for s in shape):
        raise ValueError(f"reshape: cannot reshape a tensor of shape {tuple(x.shape)} "
                         f"({math.prod(x.shape)} elements) to {shape}; expected a shape of as "
                         f"many elements")
    return Spec(tuple(shape), x.dtype)


def _reshape_reference(x, *, shape):
    return np.reshape(x, shape)


def _broadcast_rule(x: Any, *, shape: tuple[int, ...]) -> Spec:
    source = tuple(x.shape)
    if len(source) > len(shape) or any(
            s not in (1, t) for s, t in zip(source[::-1], shape[::-1])):
        raise ValueError(f"broadcast_to: cannot broadcast a tensor of shape {source} to {shape}; "
                         f"each trailing dimension must be equal or 1")
    return Spec(tuple(shape), x.dtype)


def _broadcast_reference(x, *, shape):
    return np.broadcast_to(x, shape)


def _transpose_rule(x: Any, *, perm: tuple[int, ...] | None) -> Spec:
    shape = tuple(x.shape)
    if perm is None:
        return Spec(shape[::-1], x.dtype)
    if sorted(perm) != list(range(len(shape))):
        raise ValueError(f"transpose: perm {perm} is not a permutation of the {len(shape)} axes "
                         f"of shape {shape}")
    return Spec(tuple(shape[p] for p in perm), x.dtype)


def _transpose_reference(x, *, perm):
    return np.transpose(x, perm)


def _pad_rule(x: Any, *, pad_width: tuple[tuple[int, int], ...], value: Any) -> Spec:
    shape = tuple(x.shape)
    if len(pad_width) != len(shape) or any(len(p) != 2 or min(p) < 0 for p in pad_width):
        raise ValueError(f"pad: pad_width {pad_width} must give two non-negative sizes for each "
                         f"of the {len(shape)} axes of shape {shape}")
    return Spec(tuple(s + a + b for s, (a, b) in zip(shape, pad_width)), x.dtype)


def _pad_reference(x, *, pad_width, value):
    return np.pad(x, pad_width, mode="constant", constant_values=value)


def _concat_rule(*xs: Any, axis: int) -> Spec:
    if not xs:
        raise ValueError("concat: needs at least one tensor")
    first = tuple(xs[0].shape)
    if not 0 <= axis < max(len(first), 1) or not first:
        raise ValueError(f"concat: axis {axis} is out of range for shape {first}")
    total = 0
    for i, x in enumerate(xs):
        need_same_dtype("concat", ("tensor 0", xs[0]), (f"tensor {i}", x))
        shape = tuple(x.shape)
        if len(shape) != len(first) or shape[:axis] + shape[axis + 1:] != \
                first[:axis] + first[axis + 1:]:
            raise ValueError(f"concat: tensor {i} has shape {shape} but tensor 0 has shape "
                             f"{first}; they must match except along axis {axis}")
        total += shape[axis]
    return Spec(first[:axis] + (total,) + first[axis + 1:], xs[0].dtype)


def _concat_reference(*xs, axis):
    return np.concatenate(xs, axis=axis)


def _copy_rule(x: Any) -> Spec:
    return Spec(tuple(x.shape), x.dtype)


def _copy_reference(x):
    return np.array(x, copy=True)


# Their vjps read input shapes only (the tape keeps no arrays for them).
_SHAPES = dict(keep_inputs=(), keep_out=False)
primitive("reshape", "x, *, shape: tuple[int, ...]", rule=_reshape_rule,
          reference=_reshape_reference, vjp=_reshape_vjp, **_SHAPES,
          doc="`shape` is a tuple of ints with x's size; x's dtype")
primitive("broadcast_to", "x, *, shape: tuple[int, ...]", rule=_broadcast_rule,
          reference=_broadcast_reference, vjp=_broadcast_vjp, **_SHAPES,
          doc="`shape` is a tuple x broadcasts to; x's dtype (may be a read-only view)")
primitive("transpose", "x, *, perm: tuple[int, ...]", rule=_transpose_rule,
          reference=_transpose_reference, vjp=_transpose_vjp, **_SHAPES,
          doc="`perm` is a permutation tuple; x's dtype (may be a view)")
primitive("pad", "x, *, pad_width: tuple[tuple[int, int], ...], value: int | float | bool",
          rule=_pad_rule, reference=_pad_reference, vjp=_pad_vjp, **_SHAPES,
          doc="`pad_width` is a tuple of (before, after) per axis, `value` a Python number; "
              "x's dtype")
primitive("concat", "*xs, axis: int", rule=_concat_rule, reference=_concat_reference,
          vjp=_concat_vjp, **_SHAPES,
          doc="two or more arrays of one dtype, equal except along the int `axis`")
primitive("copy", "x", rule=_copy_rule, reference=_copy_reference, vjp=lambda ctx, g: (g,),
          **_SHAPES, doc="a new array equal to x, same dtype (never a view)")
