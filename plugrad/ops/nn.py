"""Fused neural-network ops: linear, dropout, the losses and two activations.

Batch normalisation has a module of its own, :mod:`plugrad.ops.batch_norm`.

Each is a composite: its decomposition uses primitives only (so a primitives-only backend trains
with it) and its vjp is written with other ops, so a fused kernel needs no autograd of its own.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from plugrad.core.dispatch import apply, as_tensor_like, create
from plugrad.core.registry import Spec, composite
from plugrad.core.tensor import Tensor
from plugrad.ops._rules import FIXES, need_kind, need_same_dtype, unary
from plugrad.ops.activation import logsoftmax_reference

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


# -- shape and dtype rules ----------------------------------------------------------------------
def _linear_rule(x: Any, w: Any, b: Any = None) -> Spec:
    if x.dtype.kind != "f" or w.dtype != x.dtype:
        need_kind("linear", "input", x, "f", FIXES["f"])
        need_same_dtype("linear", ("the input", x), ("the weight", w))
    x_shape, w_shape = x.shape, w.shape
    if len(w_shape) != 2:
        raise ValueError(f"linear: weight must be 2-D (out_features, in_features); got shape "
                         f"{w_shape}")
    if not x_shape or x_shape[-1] != w_shape[1]:
        raise ValueError(f"linear: the input's last axis must be in_features = {w_shape[1]}; got "
                         f"input shape {x_shape}; flatten it first, e.g. F.flatten(x, 1)")
    if b is not None:
        need_same_dtype("linear", ("the input", x), ("the bias", b))
        if tuple(b.shape) != w_shape[:1]:
            raise ValueError(f"linear: bias of shape {tuple(b.shape)}; expected "
                             f"({w_shape[0]},), one value per output")
    return Spec(x_shape[:-1] + w_shape[:1], x.dtype)


def _dropout_rule(x: Any, *, drop_prob: float, seed: int) -> Spec:
    need_kind("dropout", "input", x, "f", FIXES["f"])
    if not 0.0 <= drop_prob < 1.0:
        raise ValueError(f"dropout: drop_prob must be in [0, 1); got {drop_prob}")
    return Spec(tuple(x.shape), x.dtype)


def _check_label(op: str, x: Any, label: Any, axis: int) -> None:
    need_kind(op, "logits", x, "f", FIXES["f"])
    need_kind(op, "class indices as label", label, "iu")
    shape = tuple(x.shape)
    if axis.__class__ is not int or not 0 <= axis < len(shape):
        raise ValueError(f"{op}: axis {axis!r} is out of range for shape {shape}")
    expected = shape[:axis] + shape[axis + 1:]
    if tuple(label.shape) != expected:
        raise ValueError(f"{op}: label shape {tuple(label.shape)} must be x shape {shape} "
                         f"without axis {axis}, i.e. {expected}")


def _softmax_cross_entropy_rule(x: Any, label: Any, *, axis: int) -> Spec:
    _check_label("softmax_cross_entropy", x, label, axis)
    return Spec(tuple(label.shape), x.dtype)


def _softmax_cross_entropy_grad_rule(g: Any, x: Any, label: Any, *, axis: int) -> Spec:
    _check_label("softmax_cross_entropy_grad", x, label, axis)
    need_same_dtype("softmax_cross_entropy_grad", ("x", x), ("g", g))
    if tuple(g.shape) != tuple(label.shape):
        raise ValueError(f"softmax_cross_entropy_grad: g of shape {tuple(g.shape)} must have "
                         f"label's shape {tuple(label.shape)}")
    return Spec(tuple(x.shape), x.dtype)


def _binary_cross_entropy_rule(pred: Any, label: Any, *, with_logits: bool) -> Spec:
    need_kind("binary_cross_entropy", "pred", pred, "f", FIXES["f"])
    need_same_dtype("binary_cross_entropy", ("pred", pred), ("label", label))
    if tuple(pred.shape) != tuple(label.shape):
        raise ValueError(f"binary_cross_entropy: pred shape {tuple(pred.shape)} and label shape "
                         f"{tuple(label.shape)} must match")
    return Spec(tuple(pred.shape), pred.dtype)


# -- float64 references -----------------------------------------------------------------------
def _linear_reference(x, w, b=None):
    out = np.matmul(np.asarray(x, dtype=np.float64), np.asarray(w, dtype=np.float64).T)
    return out if b is None else out + b


def _softmax_cross_entropy_reference(x, label, *, axis):
    index = np.expand_dims(np.asarray(label).astype(np.intp), axis)
    picked = np.take_along_axis(logsoftmax_reference(x, axis=axis), index, axis)
    return -np.squeeze(picked, axis)


def _softmax_cross_entropy_grad_reference(g, x, label, *, axis):
    prob = np.exp(logsoftmax_reference(np.asarray(x, dtype=np.float64), axis=axis))
    classes = np.arange(x.shape[axis]).reshape(
        tuple(-1 if i == axis else 1 for i in range(x.ndim)))
    one_hot = (np.expand_dims(label, axis) == classes).astype(np.float64)
    return (prob - one_hot) * np.expand_dims(g, axis)


def _binary_cross_entropy_reference(pred, label, *, with_logits):
    x, y = np.asarray(pred, dtype=np.float64), np.asarray(label, dtype=np.float64)
    if with_logits:
        return np.maximum(x, 0) - x * y + np.log1p(np.exp(-np.abs(x)))
    return -(y * np.log(x) + (1 - y) * np.log(1 - x))


def _leaky_relu_reference(x, *, negative_slope):
    return np.where(x > 0, x, x * negative_slope)


_ERF = np.vectorize(math.erf, otypes=[np.float64])


def _gelu_reference(x):
    return x * 0.5 * (1 + _ERF(np.asarray(x, dtype=np.float64) / math.sqrt(2)))


composite("linear", "x, w, b=None", rule=_linear_rule, reference=_linear_reference,
          decomposition=_linear, vjp=_linear_vjp, keep_inputs=(0, 1), keep_out=False,
          doc="x (..., F), w (O, F), optional b (O,); x @ w.T + b, x's dtype")
composite("dropout", "x, *, drop_prob: float, seed: int", rule=_dropout_rule, reference=None,
          decomposition=_dropout, vjp=_dropout_vjp, keep_inputs=(), keep_out=False,
          doc="x, `drop_prob` a float in [0, 1), `seed` an int; x / (1 - p) where a float32 "
              "uniform draw from seed (the uniform kernel's) is >= p, else 0; x's shape and "
              "dtype")
composite("softmax_cross_entropy", "x, label, *, axis: int", rule=_softmax_cross_entropy_rule,
          reference=_softmax_cross_entropy_reference, decomposition=_softmax_cross_entropy,
          vjp=_softmax_cross_entropy_vjp, keep_out=False,
          doc="x (..., C, ...) floating, label int32 of x's shape without `axis`; "
              "-log softmax(x, axis)[label] per sample, label's shape, x's dtype")
composite("softmax_cross_entropy_grad", "g, x, label, *, axis: int",
          rule=_softmax_cross_entropy_grad_rule,
          reference=_softmax_cross_entropy_grad_reference,
          decomposition=_softmax_cross_entropy_grad,
          doc="g of label's shape, x and label as softmax_cross_entropy's; "
              "(softmax(x) - one_hot(label)) * g, x's shape and dtype")
composite("binary_cross_entropy", "pred, label, *, with_logits: bool",
          rule=_binary_cross_entropy_rule, reference=_binary_cross_entropy_reference,
          decomposition=_binary_cross_entropy, vjp=_binary_cross_entropy_vjp, keep_out=False,
          doc="pred and label of one shape and dtype (floating), `with_logits` a bool; "
              "elementwise -(y log p + (1 - y) log(1 - p)), p = sigmoid(pred) with logits")
composite("leaky_relu", "x, *, negative_slope: float", rule=unary("leaky_relu", "f"),
          reference=_leaky_relu_reference, decomposition=_leaky_relu, vjp=_leaky_relu_vjp,
          keep_out=False, doc="x if x > 0 else `negative_slope` * x; x's shape and dtype")
composite("gelu", "x", rule=unary("gelu", "f"), reference=_gelu_reference, decomposition=_gelu,
          vjp=_gelu_vjp, keep_out=False,
          doc="x * Phi(x), Phi the standard normal CDF (erf form); x's shape and dtype")
