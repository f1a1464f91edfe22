"""Reduction primitives and their vjps, and ``mean``, a composite of ``sum``."""
from __future__ import annotations

from typing import Any

import numpy as np

from plugrad import functional as F
from plugrad.core.dispatch import apply, as_tensor_like
from plugrad.core.registry import Spec, composite, primitive
from plugrad.functional._utils import reduced_count
from plugrad.ops._rules import FIXES, need_kind, reduce_shape, reduction


def _kept_shape(ctx):
    """The output shape with reduced axes kept as size 1, to broadcast back to the input."""
    shape = ctx.saved[0].shape
    axis = ctx.attrs["axis"]
    return tuple(1 if axis is None or i in axis else s for i, s in enumerate(shape))


def _expand(ctx, t):
    kept = _kept_shape(ctx)
    return t if t._data.shape == kept else apply("reshape", t, shape=kept)


def _sum_vjp(ctx, g):
    shape = ctx.saved[0].shape
    if ctx.attrs["axis"] is not None:  # a full reduction's scalar broadcasts as it is
        g = _expand(ctx, g)
    return (apply("broadcast_to", g, shape=shape),)


def _mean(x, *, axis, keepdims):
    total = apply("sum", x, axis=axis, keepdims=keepdims)
    return apply("mul", total, as_tensor_like(1.0 / reduced_count(x.shape, axis), total))


def _mean_vjp(ctx, g):
    scale = as_tensor_like(1.0 / reduced_count(ctx.saved[0].shape, ctx.attrs["axis"]), g)
    return _sum_vjp(ctx, apply("mul", g, scale))


def _extremum_vjp(ctx, g):
    x, = ctx.inputs
    out = _expand(ctx, ctx.out)
    hit = F.astype(x == out, x.dtype)
    count = apply("sum", hit, axis=ctx.attrs["axis"], keepdims=True)
    return (hit * (_expand(ctx, g) / count),)


def _prod_vjp(ctx, g):
    x, = ctx.inputs
    # out / x, with zeros handled by the product of the other elements where x == 0.
    nonzero = F.where(x == 0, F.ones_like(x), x)
    zeros = apply("sum", F.astype(x == 0, x.dtype), axis=ctx.attrs["axis"], keepdims=True)
    prod_nonzero = apply("prod", nonzero, axis=ctx.attrs["axis"], keepdims=True)
    others = F.where(x == 0, F.where(zeros == 1, prod_nonzero, F.zeros_like(prod_nonzero)),
                     F.where(zeros == 0, prod_nonzero / nonzero, F.zeros_like(x)))
    return (_expand(ctx, g) * others,)


def _reference(name: str, fn: Any):
    """The float64 reference of a reduction: NumPy's ``fn`` with the op's attributes."""
    def reference(x, *, axis, keepdims):
        return fn(x, axis=axis, keepdims=keepdims)

    reference.__name__ = f"{name}_reference"
    return reference


def _mean_reference(x, *, axis, keepdims):
    return np.mean(np.asarray(x, dtype=np.float64), axis=axis, keepdims=keepdims)


def _arg_rule(op: str):
    def rule(x: Any, *, axis: int | None, keepdims: bool) -> Spec:
        shape = tuple(x.shape)
        if 0 in shape:
            raise ValueError(f"{op}: cannot take {op} of an empty tensor of shape {shape}")
        if axis is None:
            out = (1,) * len(shape) if keepdims else ()
        else:
            out = reduce_shape(op, shape, (axis,), keepdims)
        return Spec(out, np.dtype(np.int32))

    return rule


def _mean_rule(x: Any, *, axis: tuple[int, ...] | None, keepdims: bool) -> Spec:
    need_kind("mean", "input", x, "f", FIXES["f"])
    if not reduced_count(tuple(x.shape), axis):
        raise ValueError(f"mean: the axes {axis} of shape {tuple(x.shape)} hold no element; "
                         f"expected at least one element to average")
    return Spec(reduce_shape("mean", tuple(x.shape), axis, keepdims), x.dtype)


_SIGNATURE = "x, *, axis: tuple[int, ...] | None, keepdims: bool"
_RETURNS = "axis is None (all axes) or a sorted tuple of ints; x's dtype (never widened)"
_NONEMPTY = "; never reduces zero elements into a value"
primitive("sum", _SIGNATURE, rule=reduction("sum"), reference=_reference("sum", np.sum),
          vjp=_sum_vjp, keep_inputs=(), keep_out=False, doc=_RETURNS)
primitive("max", _SIGNATURE, rule=reduction("max", nonempty="maximum"),
          reference=_reference("max", np.max), vjp=_extremum_vjp, keep_inputs=(0,),
          doc=_RETURNS + _NONEMPTY)
primitive("min", _SIGNATURE, rule=reduction("min", nonempty="minimum"),
          reference=_reference("min", np.min), vjp=_extremum_vjp, keep_inputs=(0,),
          doc=_RETURNS + _NONEMPTY)
primitive("prod", _SIGNATURE, rule=reduction("prod"), reference=_reference("prod", np.prod),
          vjp=_prod_vjp, keep_inputs=(0,), keep_out=False, doc=_RETURNS)
primitive("argmax", "x, *, axis: int | None, keepdims: bool", rule=_arg_rule("argmax"),
          reference=_reference("argmax", np.argmax), differentiable=False,
          doc="axis is None (the flattened x) or an int; int32 indices of the first maximum")
primitive("argmin", "x, *, axis: int | None, keepdims: bool", rule=_arg_rule("argmin"),
          reference=_reference("argmin", np.argmin), differentiable=False,
          doc="axis is None (the flattened x) or an int; int32 indices of the first minimum")
# One op (not sum then mul) so a mean costs one dispatch and one tape node: losses end in one.
composite("mean", _SIGNATURE, rule=_mean_rule, reference=_mean_reference, decomposition=_mean,
          vjp=_mean_vjp, keep_inputs=(), keep_out=False,
          doc="floating x; axis None (all axes) or a sorted tuple of ints, reducing at least one "
              "element; the sum over axis divided by the number of elements reduced, x's dtype")
