"""Fused neural-network ops: linear, batch_norm, dropout, the losses and two activations.

Each is a composite: its decomposition uses primitives only (so a primitives-only backend trains
with it) and its vjp is written with other ops, so a fused kernel needs no autograd of its own.
"""
from __future__ import annotations

import math

import numpy as np

from plugrad.core.dispatch import apply, as_tensor_like, create
from plugrad.core.registry import composite
from plugrad.core.tensor import Tensor
from plugrad.functional._utils import reduced_count, sum_to

__all__ = ["ERF_COEFFICIENTS"]


def _const(value: float, like: Tensor) -> Tensor:
    return as_tensor_like(value, like)


def _swap(x: Tensor) -> Tensor:
    return apply("transpose", x, perm=(1, 0))


# -- linear: x @ w.T (+ b), weight (out_features, in_features) ---------------------------------
def _as_matrix(t: Tensor) -> Tensor:
    """Leading axes merged: (..., F) -> (M, F)."""
    if t.ndim == 2:
        return t
    last = t.shape[-1]
    return apply("reshape", t, shape=(t.size // last if last else 0, last))


def _linear(x, w, b=None):
    out = apply("matmul", x, _swap(w))
    return out if b is None else apply("add", out, b)


def _linear_vjp(ctx, g):
    # The input's gradient last, so the next vjp finds it in cache (as in conv2d's vjp).
    x, w = ctx.inputs[:2]
    needs = ctx.needs
    gw = gb = None
    g2 = _as_matrix(g)
    if needs[1]:
        gw = apply("matmul", _swap(g2), _as_matrix(x))
    if len(needs) == 3 and needs[2]:
        gb = apply("sum", g2, axis=(0,), keepdims=False)
    gx = apply("matmul", g, w) if needs[0] else None
    return (gx, gw) if len(needs) == 2 else (gx, gw, gb)


# -- batch_norm in training mode: batch statistics over ``axes`` --------------------------------
def _batch_stats(x, axes, eps):
    scale = _const(1.0 / reduced_count(x.shape, axes), x)
    mean = apply("mul", apply("sum", x, axis=axes, keepdims=True), scale)
    centered = apply("sub", x, mean)
    var = apply("mul", apply("sum", apply("mul", centered, centered), axis=axes, keepdims=True),
                scale)
    inv_std = apply("div", _const(1.0, x), apply("sqrt", apply("add", var, _const(eps, x))))
    return centered, inv_std, scale


def _batch_norm(x, weight, bias, *, axes, eps):
    centered, inv_std, _ = _batch_stats(x, axes, eps)
    return apply("add", apply("mul", apply("mul", centered, inv_std), weight), bias)


def _batch_norm_vjp(ctx, g):
    x, weight, bias = ctx.inputs
    axes = ctx.attrs["axes"]
    centered, inv_std, scale = _batch_stats(x, axes, ctx.attrs["eps"])
    xhat = apply("mul", centered, inv_std)
    gw = sum_to(apply("mul", g, xhat), weight.shape) if ctx.needs[1] else None
    gb = sum_to(g, bias.shape) if ctx.needs[2] else None
    gx = None
    if ctx.needs[0]:
        gxhat = apply("mul", g, weight)
        mean_g = apply("mul", apply("sum", gxhat, axis=axes, keepdims=True), scale)
        mean_gx = apply("mul", apply("sum", apply("mul", gxhat, xhat), axis=axes, keepdims=True),
                        scale)
        gx = apply("mul", inv_std,
                   apply("sub", apply("sub", gxhat, mean_g), apply("mul", xhat, mean_gx)))
    return gx, gw, gb


# -- dropout: the mask is a function of (seed, shape), so the vjp is dropout of g -----------------
def _dropout(x, *, drop_prob, seed):
    unit = create("uniform", x._device, shape=tuple(x.shape), dtype=np.dtype("float32"),
                  seed=seed)
    keep = apply("ge", unit, as_tensor_like(drop_prob, unit, np.dtype("float32")))
    scaled = apply("mul", x, _const(1.0 / (1.0 - drop_prob), x))
    zero = create("full", x._device, shape=(), value=0, dtype=x._dtype)
    return apply("where", keep, scaled, zero)


def _dropout_vjp(ctx, g):
    return (apply("dropout", g, **ctx.attrs),)


# -- softmax cross-entropy: per-sample -log softmax(x)[label] along ``axis`` -------------------
def _expand(t: Tensor, axis: int) -> Tensor:
    shape = tuple(t.shape)
    return apply("reshape", t, shape=shape[:axis] + (1,) + shape[axis:])


def _softmax_cross_entropy(x, label, *, axis):
    log_prob = apply("logsoftmax", x, axis=axis)
    picked = apply("gather", log_prob, _expand(label, axis), axis=axis)
    return apply("neg", apply("reshape", picked, shape=tuple(label.shape)))


def _softmax_cross_entropy_vjp(ctx, g):
    x, label = ctx.inputs
    return apply("softmax_cross_entropy_grad", g, x, label, axis=ctx.attrs["axis"]), None


def _softmax_cross_entropy_grad(g, x, label, *, axis):
    classes = x.shape[axis]
    prob = apply("softmax", x, axis=axis)
    ids = create("arange", x._device, start=0, stop=classes, step=1, dtype=label._dtype)
    ids = apply("reshape", ids, shape=tuple(classes if i == axis else 1 for i in range(x.ndim)))
    one_hot = apply("cast", apply("eq", _expand(label, axis), ids), dtype=x._dtype)
    return apply("mul", apply("sub", prob, one_hot), _expand(g, axis))


# -- binary cross-entropy, elementwise --------------------------------------------------------
def _binary_cross_entropy(pred, label, *, with_logits):
    if with_logits:
        # max(x, 0) - x * y + log(1 + exp(-|x|)): never overflows.
        zero = _const(0.0, pred)
        softplus = apply("log1p", apply("exp", apply("neg", apply("abs", pred))))
        return apply("add", apply("sub", apply("maximum", pred, zero), apply("mul", pred, label)),
                     softplus)
    one = _const(1.0, pred)
    log_p = apply("log", pred)
    log_q = apply("log", apply("sub", one, pred))
    return apply("neg", apply("add", apply("mul", label, log_p),
                              apply("mul", apply("sub", one, label), log_q)))


def _binary_cross_entropy_vjp(ctx, g):
    pred, label = ctx.inputs
    one = _const(1.0, pred)
    gp = gl = None
    if ctx.attrs["with_logits"]:
        if ctx.needs[0]:
            gp = apply("mul", g, apply("sub", apply("sigmoid", pred), label))
        if ctx.needs[1]:
            gl = apply("neg", apply("mul", g, pred))
    else:
        q = apply("sub", one, pred)
        if ctx.needs[0]:
            gp = apply("div", apply("mul", g, apply("sub", pred, label)), apply("mul", pred, q))
        if ctx.needs[1]:
            gl = apply("mul", g, apply("sub", apply("log", q), apply("log", pred)))
    return gp, gl


# -- activations ----------------------------------------------------------------------------
def _leaky_relu(x, *, negative_slope):
    positive = apply("gt", x, _const(0.0, x))
    return apply("where", positive, x, apply("mul", x, _const(negative_slope, x)))


def _leaky_relu_vjp(ctx, g):
    x, = ctx.inputs
    positive = apply("gt", x, _const(0.0, x))
    return (apply("where", positive, g, apply("mul", g, _const(ctx.attrs["negative_slope"], g))),)


#: Abramowitz & Stegun 7.1.26: erf(z) ~ 1 - t(a1 + t(a2 + ...)) exp(-z^2), t = 1 / (1 + p z),
#: for z >= 0, absolute error below 1.5e-7 (float32 resolution); the numpy kernel uses it too.
ERF_COEFFICIENTS = (0.3275911, (0.254829592, -0.284496736, 1.421413741, -1.453152027,
                                1.061405429))


def _erf(z):
    p, a = ERF_COEFFICIENTS
    magnitude = apply("abs", z)
    t = apply("div", _const(1.0, z), apply("add", _const(1.0, z), apply("mul", magnitude,
                                                                          _const(p, z))))
    poly = _const(a[-1], z)
    for coefficient in reversed(a[:-1]):
        poly = apply("add", apply("mul", poly, t), _const(coefficient, z))
    tail = apply("mul", apply("mul", poly, t),
                 apply("exp", apply("neg", apply("mul", magnitude, magnitude))))
    return apply("mul", apply("sign", z), apply("sub", _const(1.0, z), tail))


def _gelu(x):
    # x * Phi(x), Phi the standard normal CDF = (1 + erf(x / sqrt 2)) / 2.
    cdf = apply("mul", apply("add", _const(1.0, x), _erf(apply("mul", x, _const(
        1 / math.sqrt(2), x)))), _const(0.5, x))
    return apply("mul", x, cdf)


def _gelu_vjp(ctx, g):
    x, = ctx.inputs
    cdf = apply("mul", apply("add", _const(1.0, x), _erf(apply("mul", x, _const(
        1 / math.sqrt(2), x)))), _const(0.5, x))
    pdf = apply("mul", apply("exp", apply("mul", apply("mul", x, x), _const(-0.5, x))),
                _const(1 / math.sqrt(2 * math.pi), x))
    return (apply("mul", g, apply("add", cdf, apply("mul", x, pdf))),)


composite("linear", decomposition=_linear, vjp=_linear_vjp, keep_inputs=(0, 1), keep_out=False,
          doc="x @ weight.T (+ bias); inputs (x, weight) or (x, weight, bias)")
composite("batch_norm", decomposition=_batch_norm, vjp=_batch_norm_vjp, keep_inputs=(0, 1),
          keep_out=False,
          doc="(x - mean) / sqrt(var + eps) * weight + bias with batch statistics over axes")
composite("dropout", decomposition=_dropout, vjp=_dropout_vjp, keep_inputs=(), keep_out=False,
          doc="x / (1 - p) where a uniform draw from seed is >= p, else 0")
composite("softmax_cross_entropy", decomposition=_softmax_cross_entropy,
          vjp=_softmax_cross_entropy_vjp, doc="-logsoftmax(x, axis)[label] per sample",
          keep_out=False)
composite("softmax_cross_entropy_grad", decomposition=_softmax_cross_entropy_grad,
          doc="(softmax(x) - one_hot(label)) * g")
composite("binary_cross_entropy", decomposition=_binary_cross_entropy,
          vjp=_binary_cross_entropy_vjp, doc="elementwise binary cross-entropy",
          keep_out=False)
composite("leaky_relu", decomposition=_leaky_relu, vjp=_leaky_relu_vjp, keep_out=False,
          doc="x if x > 0 else negative_slope * x")
composite("gelu", decomposition=_gelu, vjp=_gelu_vjp, doc="x * Phi(x) (erf form)",
          keep_out=False)
