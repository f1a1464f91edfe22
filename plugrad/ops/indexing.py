"""Indexing primitives: getitem, setitem, index_add, gather, scatter_add."""
from __future__ import annotations

from plugrad import functional as F
from plugrad.core.dispatch import apply
from plugrad.core.registry import primitive
from plugrad.functional._utils import sum_to


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


# Only index arrays are read as data; the other inputs' shapes and dtypes are enough.
primitive("getitem", vjp=_getitem_vjp, keep_inputs=(), keep_out=False)
primitive("setitem", vjp=_setitem_vjp, keep_inputs=(), keep_out=False)
primitive("index_add", vjp=_index_add_vjp, keep_inputs=(), keep_out=False)
primitive("gather", vjp=_gather_vjp, keep_inputs=(1,), keep_out=False)
primitive("scatter_add", vjp=_scatter_add_vjp, keep_inputs=(1,), keep_out=False)
