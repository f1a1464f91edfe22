"""Reduction primitives and their vjps, and ``mean``, a composite of ``sum``."""
from __future__ import annotations

from plugrad import functional as F
from plugrad.core.dispatch import apply, as_tensor_like
from plugrad.core.registry import composite, primitive
from plugrad.functional._utils import reduced_count


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


primitive("sum", vjp=_sum_vjp, keep_inputs=(), keep_out=False)
primitive("max", vjp=_extremum_vjp, keep_inputs=(0,))
primitive("min", vjp=_extremum_vjp, keep_inputs=(0,))
primitive("prod", vjp=_prod_vjp, keep_inputs=(0,), keep_out=False)
primitive("argmax", differentiable=False)
primitive("argmin", differentiable=False)
# One op (not sum then mul) so a mean costs one dispatch and one tape node: losses end in one.
composite("mean", decomposition=_mean, vjp=_mean_vjp, keep_inputs=(), keep_out=False,
          doc="sum over axis times 1 / (number of elements reduced); float inputs, at least one "
              "element reduced")
