"""Reduction primitives and their vjps."""
from __future__ import annotations

from plugrad import functional as F
from plugrad.core.dispatch import apply
from plugrad.core.registry import primitive


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


primitive("sum", vjp=_sum_vjp)
primitive("max", vjp=_extremum_vjp)
primitive("min", vjp=_extremum_vjp)
primitive("prod", vjp=_prod_vjp)
primitive("argmax", differentiable=False)
primitive("argmin", differentiable=False)
