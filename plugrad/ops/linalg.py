"""matmul and its vjp (batched, with broadcast batch dimensions summed back)."""
from __future__ import annotations

from typing import Any

import numpy as np

from plugrad.core.dispatch import apply, check_broadcast
from plugrad.core.registry import Spec, primitive
from plugrad.functional._utils import sum_to
from plugrad.ops._rules import need_same_dtype


def _swap_last(x):
    perm = tuple(range(x.ndim - 2)) + (x.ndim - 1, x.ndim - 2)
    return apply("transpose", x, perm=perm)


def _matmul_vjp(ctx, g):
    x, y = ctx.inputs
    gx = sum_to(apply("matmul", g, _swap_last(y)), x.shape) if ctx.needs[0] else None
    gy = sum_to(apply("matmul", _swap_last(x), g), y.shape) if ctx.needs[1] else None
    return gx, gy


def _matmul_rule(x: Any, y: Any) -> Spec:
    need_same_dtype("matmul", ("x", x), ("y", y))
    a, b = tuple(x.shape), tuple(y.shape)
    if len(a) < 2 or len(b) < 2 or a[-1] != b[-2]:
        raise ValueError(f"matmul: shapes {a} and {b} are not aligned; expected 2-D or more "
                         f"with x's last axis equal to y's second-to-last")
    batch = check_broadcast("matmul", a[:-2], b[:-2])
    return Spec(batch + (a[-2], b[-1]), x.dtype)


def _matmul_reference(x, y):
    return np.matmul(x, y)


primitive("matmul", "x, y", rule=_matmul_rule, reference=_matmul_reference, vjp=_matmul_vjp,
          keep_inputs=(0, 1), keep_out=False,
          doc="x and y share a dtype, both 2-D or more with broadcast batch axes; NumPy's matmul")
