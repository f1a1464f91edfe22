"""Shape primitives (reshape, broadcast, transpose, pad, concat) and their vjps."""
from __future__ import annotations

from plugrad.core.dispatch import apply
from plugrad.core.registry import primitive
from plugrad.functional._utils import sum_to


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


# Their vjps read input shapes only (the tape keeps no arrays for them).
_SHAPES = dict(keep_inputs=(), keep_out=False)
primitive("reshape", vjp=_reshape_vjp, **_SHAPES)
primitive("broadcast_to", vjp=_broadcast_vjp, **_SHAPES)
primitive("transpose", vjp=_transpose_vjp, **_SHAPES)
primitive("pad", vjp=_pad_vjp, **_SHAPES)
primitive("concat", vjp=_concat_vjp, **_SHAPES)
primitive("copy", vjp=lambda ctx, g: (g,), **_SHAPES)
