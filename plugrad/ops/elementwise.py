"""Elementwise primitives: signatures, shape/dtype rules, float64 references and vjps."""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from plugrad import functional as F
from plugrad.core.dispatch import apply, check_broadcast
from plugrad.core.registry import Spec, primitive
from plugrad.functional._utils import sum_to
from plugrad.ops._rules import FIXES, binary, compare, need_kind, need_same_dtype, unary


def _unbroadcast(ctx, gx, gy):
    x, y = ctx.saved
    return (sum_to(gx, x.shape) if gx is not None else None,
            sum_to(gy, y.shape) if gy is not None else None)


# -- unary: d/dx written with the saved input x or output out ------------------------------
def _round_half_away(x):
    return np.copysign(np.floor(np.abs(x) + 0.5), x)


#: name -> (float64 reference, dtype kinds accepted, what the kernel returns, vjp, what it keeps)
_X, _OUT = dict(keep_inputs=(0,), keep_out=False), dict(keep_inputs=())
_UNARY: dict[str, tuple[Callable, str, str, Callable | None, dict]] = {
    "neg": (np.negative, "fiu", "-x", lambda ctx, g: (-g,), dict(keep_inputs=(), keep_out=False)),
    "abs": (np.abs, "fiu", "absolute value", lambda ctx, g: (g * F.sign(ctx.inputs[0]),), _X),
    "sign": (np.sign, "fiu", "-1, 0 or 1", None, {}),
    "exp": (np.exp, "f", "e ** x", lambda ctx, g: (g * ctx.out,), _OUT),
    "log": (np.log, "f", "natural log", lambda ctx, g: (g / ctx.inputs[0],), _X),
    "log1p": (np.log1p, "f", "log(1 + x)", lambda ctx, g: (g / (ctx.inputs[0] + 1),), _X),
    "sqrt": (np.sqrt, "f", "square root", lambda ctx, g: (g / (ctx.out * 2),), _OUT),
    "sin": (np.sin, "f", "sine", lambda ctx, g: (g * F.cos(ctx.inputs[0]),), _X),
    "cos": (np.cos, "f", "cosine", lambda ctx, g: (-g * F.sin(ctx.inputs[0]),), _X),
    "tanh": (np.tanh, "f", "hyperbolic tangent", lambda ctx, g: (g * (1 - ctx.out * ctx.out),),
             _OUT),
    # Piecewise constant: no gradient flows.
    "floor": (np.floor, "f", "round down", None, {}),
    "ceil": (np.ceil, "f", "round up", None, {}),
    "round": (_round_half_away, "f", "halves away from zero (2.5 -> 3, -2.5 -> -3)", None, {}),
    "logical_not": (np.logical_not, "b", "not x", None, {}),
}
_KIND_NOTE = {"f": " (x floating)", "b": " (x bool)", "fiu": ""}


def _declare_unary(name: str, fn: Callable, kinds: str, what: str, vjp: Callable | None,
                   keep: dict) -> None:
    def reference(x):
        return fn(x)

    reference.__name__ = f"{name}_reference"
    primitive(name, "x", rule=unary(name, kinds), reference=reference, vjp=vjp,
              doc=f"{what}{_KIND_NOTE[kinds]}; x's shape and dtype", **keep)


for _name, _declaration in _UNARY.items():
    _declare_unary(_name, *_declaration)


# -- binary ---------------------------------------------------------------------------------
def _add_vjp(ctx, g):
    return _unbroadcast(ctx, g, g)


def _sub_vjp(ctx, g):
    return _unbroadcast(ctx, g, -g if ctx.needs[1] else None)


def _mul_vjp(ctx, g):
    x, y = ctx.inputs
    return _unbroadcast(ctx, g * y if ctx.needs[0] else None, g * x if ctx.needs[1] else None)


def _div_vjp(ctx, g):
    x, y = ctx.inputs
    gx = g / y
    gy = -gx * ctx.out if ctx.needs[1] else None
    return _unbroadcast(ctx, gx if ctx.needs[0] else None, gy)


def _pow_vjp(ctx, g):
    x, y = ctx.inputs
    out = ctx.out
    gx = g * y * x ** (y - 1) if ctx.needs[0] else None
    # d/dy x**y = x**y log x, taken as 0 where x == 0 (the limit used by NumPy-based autodiff).
    gy = g * out * F.log(F.where(x > 0, x, 1)) if ctx.needs[1] else None
    return _unbroadcast(ctx, gx, gy)


def _mod_vjp(ctx, g):
    x, y = ctx.inputs
    return _unbroadcast(ctx, g, -g * F.floor_div(x, y) if ctx.needs[1] else None)


def _select_vjp(pick_x):
    def vjp(ctx, g):
        x, y = ctx.inputs
        mask = pick_x(x, y)
        zero = F.zeros_like(g)
        return _unbroadcast(ctx, F.where(mask, g, zero), F.where(mask, zero, g))
    return vjp


_SHAPES, _XY = dict(keep_inputs=(), keep_out=False), dict(keep_inputs=(0, 1), keep_out=False)
# Ties send the gradient to x, so the two parts always sum to g.
_maximum_vjp = _select_vjp(lambda x, y: x >= y)
_minimum_vjp = _select_vjp(lambda x, y: x <= y)
#: name -> (float64 reference, dtype kinds accepted, what it computes, vjp, what the vjp keeps)
_BINARY: dict[str, tuple[Callable, str, str, Callable | None, dict]] = {
    "add": (np.add, "fiub", "x + y", _add_vjp, _SHAPES),
    "sub": (np.subtract, "fiu", "x - y", _sub_vjp, _SHAPES),
    "mul": (np.multiply, "fiub", "x * y", _mul_vjp, _XY),
    "div": (np.true_divide, "f", "x / y (floating)", _div_vjp, dict(keep_inputs=(1,))),
    "pow": (np.power, "fiu", "x ** y", _pow_vjp, {}),
    "mod": (np.remainder, "fiu", "x - floor(x / y) * y (the sign of y)", _mod_vjp, _XY),
    "floor_div": (np.floor_divide, "fiu", "floor(x / y)", None, {}),
    "maximum": (np.maximum, "fiub", "the larger of x and y", _maximum_vjp, _XY),
    "minimum": (np.minimum, "fiub", "the smaller of x and y", _minimum_vjp, _XY),
    "logical_and": (np.logical_and, "b", "x and y (bool)", None, {}),
    "logical_or": (np.logical_or, "b", "x or y (bool)", None, {}),
    "logical_xor": (np.logical_xor, "b", "x xor y (bool)", None, {}),
}
_COMPARISONS: dict[str, tuple[Callable, str]] = {
    "eq": (np.equal, "x == y"), "ne": (np.not_equal, "x != y"), "lt": (np.less, "x < y"),
    "le": (np.less_equal, "x <= y"), "gt": (np.greater, "x > y"),
    "ge": (np.greater_equal, "x >= y"),
}


def _binary_reference(name: str, fn: Callable) -> Callable:
    def reference(x, y):
        return fn(x, y)

    reference.__name__ = f"{name}_reference"
    return reference


for _name, (_fn, _kinds, _what, _vjp, _keep) in _BINARY.items():
    primitive(_name, "x, y", rule=binary(_name, _kinds), reference=_binary_reference(_name, _fn),
              vjp=_vjp, **_keep,
              doc=f"{_what}; x and y share a dtype; the broadcast shape, their dtype")
for _name, (_fn, _what) in _COMPARISONS.items():
    primitive(_name, "x, y", rule=compare(_name), reference=_binary_reference(_name, _fn),
              differentiable=False,
              doc=f"{_what}; x and y share a dtype; the broadcast shape, bool")


def _where_vjp(ctx, g):
    mask, x, y = ctx.inputs
    zero = F.zeros_like(g)
    gx = sum_to(F.where(mask, g, zero), x.shape) if ctx.needs[1] else None
    gy = sum_to(F.where(mask, zero, g), y.shape) if ctx.needs[2] else None
    return None, gx, gy


def _cast_vjp(ctx, g):
    source = ctx.saved[0].dtype
    return (apply("cast", g, dtype=source) if source.kind == "f" else None,)


def _where_rule(cond: Any, x: Any, y: Any) -> Spec:
    need_kind("where", "mask", cond, "b", FIXES["b"])
    need_same_dtype("where", ("x", x), ("y", y))
    shape = check_broadcast("where", tuple(cond.shape), tuple(x.shape))
    return Spec(check_broadcast("where", shape, tuple(y.shape)), x.dtype)


def _where_reference(cond, x, y):
    return np.where(cond, x, y)


def _cast_rule(x: Any, *, dtype: np.dtype) -> Spec:
    return Spec(tuple(x.shape), np.dtype(dtype))


def _cast_reference(x, *, dtype):
    # Float targets keep the exact value: the tolerance of the target dtype covers the rounding,
    # and finite differences of an exact copy give the gradient 1 the vjp must produce.
    target = np.dtype(dtype)
    if target.kind == "f":
        return np.asarray(x, dtype=np.float64)
    if target == np.bool_:
        return np.asarray(x) != 0
    return np.asarray(x).astype(target)


primitive("where", "cond, x, y", rule=_where_rule, reference=_where_reference, vjp=_where_vjp,
          keep_inputs=(0,), keep_out=False,
          doc="cond is bool, x and y share a dtype; the broadcast shape of all three, x's dtype")
primitive("cast", "x, *, dtype: numpy.dtype", rule=_cast_rule, reference=_cast_reference,
          vjp=_cast_vjp, **_SHAPES,
          doc="x converted to `dtype`; float to int truncates towards zero")
