"""matmul and its vjp (batched, with broadcast batch dimensions summed back)."""
from __future__ import annotations

from plugrad.core.dispatch import apply
from plugrad.core.registry import primitive
from plugrad.functional._utils import sum_to


def _swap_last(x):
    perm = tuple(range(x.ndim - 2)) + (x.ndim - 1, x.ndim - 2)
    return apply("transpose", x, perm=perm)


def _matmul_vjp(ctx, g):
    x, y = ctx.inputs
    gx = sum_to(apply("matmul", g, _swap_last(y)), x.shape) if ctx.needs[0] else None
    gy = sum_to(apply("matmul", _swap_last(x), g), y.shape) if ctx.needs[1] else None
    return gx, gy


primitive("matmul", vjp=_matmul_vjp, keep_inputs=(0, 1), keep_out=False)
