"""Elementwise primitives and their vjps."""
from __future__ import annotations

from plugrad import functional as F
from plugrad.core.dispatch import apply
from plugrad.core.registry import primitive
from plugrad.functional._utils import sum_to


def _unbroadcast(ctx, gx, gy):
    x, y = ctx.saved
    return (sum_to(gx, x.shape) if gx is not None else None,
            sum_to(gy, y.shape) if gy is not None else None)


# -- unary: d/dx written with the saved input x or output out ------------------------------
# keep_inputs / keep_out: what each vjp reads, so the tape holds nothing else.
_X, _OUT = dict(keep_inputs=(0,), keep_out=False), dict(keep_inputs=())
primitive("neg", vjp=lambda ctx, g: (-g,), keep_inputs=(), keep_out=False)
primitive("abs", vjp=lambda ctx, g: (g * F.sign(ctx.inputs[0]),), **_X)
primitive("exp", vjp=lambda ctx, g: (g * ctx.out,), **_OUT)
primitive("log", vjp=lambda ctx, g: (g / ctx.inputs[0],), **_X)
primitive("log1p", vjp=lambda ctx, g: (g / (ctx.inputs[0] + 1),), **_X)
primitive("sqrt", vjp=lambda ctx, g: (g / (ctx.out * 2),), **_OUT)
primitive("sin", vjp=lambda ctx, g: (g * F.cos(ctx.inputs[0]),), **_X)
primitive("cos", vjp=lambda ctx, g: (-g * F.sin(ctx.inputs[0]),), **_X)
primitive("tanh", vjp=lambda ctx, g: (g * (1 - ctx.out * ctx.out),), **_OUT)
# Piecewise constant: no gradient flows.
for _name in ("sign", "floor", "ceil", "round", "logical_not"):
    primitive(_name, differentiable=False)


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
primitive("add", vjp=_add_vjp, **_SHAPES)
primitive("sub", vjp=_sub_vjp, **_SHAPES)
primitive("mul", vjp=_mul_vjp, **_XY)
primitive("div", vjp=_div_vjp, keep_inputs=(1,))
primitive("pow", vjp=_pow_vjp)
primitive("mod", vjp=_mod_vjp, **_XY)
primitive("floor_div", differentiable=False)
# Ties send the gradient to x, so the two parts always sum to g.
primitive("maximum", vjp=_select_vjp(lambda x, y: x >= y), **_XY)
primitive("minimum", vjp=_select_vjp(lambda x, y: x <= y), **_XY)
for _name in ("eq", "ne", "lt", "le", "gt", "ge", "logical_and", "logical_or", "logical_xor"):
    primitive(_name, differentiable=False)


def _where_vjp(ctx, g):
    mask, x, y = ctx.inputs
    zero = F.zeros_like(g)
    gx = sum_to(F.where(mask, g, zero), x.shape) if ctx.needs[1] else None
    gy = sum_to(F.where(mask, zero, g), y.shape) if ctx.needs[2] else None
    return None, gx, gy


def _cast_vjp(ctx, g):
    source = ctx.saved[0].dtype
    return (apply("cast", g, dtype=source) if source.kind == "f" else None,)


primitive("where", vjp=_where_vjp, keep_inputs=(0,), keep_out=False)
primitive("cast", vjp=_cast_vjp, **_SHAPES)
