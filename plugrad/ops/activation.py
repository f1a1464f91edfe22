"""Composite activations and the softmax family: decompositions plus vjps for fused kernels."""
from __future__ import annotations

from typing import Any

import numpy as np

from plugrad import functional as F
from plugrad.core.dispatch import apply
from plugrad.core.registry import Spec, composite
from plugrad.ops._rules import FIXES, need_kind, need_same_dtype, reduction, unary

__all__ = ["logsoftmax_reference"]


def _relu(x):
    return F.maximum(x, F.zeros_like(x))


def _relu_vjp(ctx, g):
    return (apply("relu_grad", g, ctx.out),)


def _relu_grad(g, out):
    return F.where(out > 0, g, F.zeros_like(g))


def _sigmoid(x):
    return 1 / (1 + F.exp(-x))


def _sigmoid_vjp(ctx, g):
    out = ctx.out
    return (g * out * (1 - out),)


def _logsumexp(x, *, axis, keepdims):
    peak = apply("max", x, axis=axis, keepdims=True).detach()
    peak = F.where(peak == peak, peak, F.zeros_like(peak))  # NaN peaks stay out of the way
    total = apply("sum", F.exp(x - peak), axis=axis, keepdims=True)
    out = F.log(total) + peak
    if not keepdims:
        out = F.reshape(out, _reduced_shape(x.shape, axis))
    return out


def _reduced_shape(shape, axis):
    axes = range(len(shape)) if axis is None else axis
    return tuple(s for i, s in enumerate(shape) if i not in axes)


def _logsumexp_vjp(ctx, g):
    x, = ctx.inputs
    axis, keepdims = ctx.attrs["axis"], ctx.attrs["keepdims"]
    out = ctx.out
    if not keepdims:
        kept = tuple(1 if axis is None or i in axis else s for i, s in enumerate(x.shape))
        out, g = F.reshape(out, kept), F.reshape(g, kept)
    return (g * F.exp(x - out),)


def _softmax(x, *, axis):
    shifted = x - apply("max", x, axis=(axis,), keepdims=True).detach()
    e = F.exp(shifted)
    return e / apply("sum", e, axis=(axis,), keepdims=True)


def _softmax_vjp(ctx, g):
    out = ctx.out
    axis = ctx.attrs["axis"]
    return (out * (g - apply("sum", g * out, axis=(axis,), keepdims=True)),)


def _logsoftmax(x, *, axis):
    shifted = x - apply("max", x, axis=(axis,), keepdims=True).detach()
    return shifted - F.log(apply("sum", F.exp(shifted), axis=(axis,), keepdims=True))


def _logsoftmax_vjp(ctx, g):
    axis = ctx.attrs["axis"]
    return (g - F.exp(ctx.out) * apply("sum", g, axis=(axis,), keepdims=True),)


# -- rules and float64 references -------------------------------------------------------------
def _relu_grad_rule(g: Any, out: Any) -> Spec:
    need_same_dtype("relu_grad", ("g", g), ("out", out))
    if tuple(g.shape) != tuple(out.shape):
        raise ValueError(f"relu_grad: g of shape {tuple(g.shape)} must have out's shape "
                         f"{tuple(out.shape)}")
    return Spec(tuple(g.shape), g.dtype)


def _softmax_rule(op: str):
    def rule(x: Any, *, axis: int) -> Spec:
        need_kind(op, "input", x, "f", FIXES["f"])
        shape = tuple(x.shape)
        if axis.__class__ is not int or not 0 <= axis < max(len(shape), 1):
            raise ValueError(f"{op}: axis {axis!r} is out of range for shape {shape}; expected "
                             f"an int in [0, {len(shape)})")
        return Spec(shape, x.dtype)

    return rule


def _relu_reference(x):
    return np.maximum(x, 0)


def _relu_grad_reference(g, out):
    return np.where(out > 0, g, 0.0)


def _sigmoid_reference(x):
    return 1 / (1 + np.exp(-np.asarray(x, dtype=np.float64)))


def _logsumexp_reference(x, *, axis, keepdims):
    peak = np.max(x, axis=axis, keepdims=True)
    out = np.log(np.sum(np.exp(x - peak), axis=axis, keepdims=True)) + peak
    return out if keepdims else np.squeeze(out, axis=axis)


def logsoftmax_reference(x, *, axis):
    shifted = x - np.max(x, axis=axis, keepdims=True)
    return shifted - np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))


def _softmax_reference(x, *, axis):
    return np.exp(logsoftmax_reference(x, axis=axis))


composite("relu", "x", rule=unary("relu", "fiu"), reference=_relu_reference,
          decomposition=_relu, vjp=_relu_vjp, keep_inputs=(),
          doc="max(x, 0); x's shape and dtype")
# Its own op so a backend can fuse it: a multiply by the mask beats a data-dependent select.
composite("relu_grad", "g, out", rule=_relu_grad_rule, reference=_relu_grad_reference,
          decomposition=_relu_grad,
          doc="g and out = relu(x) of one shape; g where out > 0, else 0, g's dtype")
composite("sigmoid", "x", rule=unary("sigmoid", "f"), reference=_sigmoid_reference,
          decomposition=_sigmoid, vjp=_sigmoid_vjp, keep_inputs=(),
          doc="1 / (1 + exp(-x)) without overflow; x's shape and dtype (floating)")
composite("logsumexp", "x, *, axis: tuple[int, ...] | None, keepdims: bool",
          rule=reduction("logsumexp", "f"), reference=_logsumexp_reference,
          decomposition=_logsumexp, vjp=_logsumexp_vjp,
          doc="log(sum(exp(x), axis)); axis None or a sorted tuple; x's dtype")
composite("softmax", "x, *, axis: int", rule=_softmax_rule("softmax"),
          reference=_softmax_reference, decomposition=_softmax, vjp=_softmax_vjp,
          keep_inputs=(), doc="exp(x) / sum(exp(x), axis) for the int `axis`; x's shape and dtype")
composite("logsoftmax", "x, *, axis: int", rule=_softmax_rule("logsoftmax"),
          reference=logsoftmax_reference, decomposition=_logsoftmax, vjp=_logsoftmax_vjp,
          keep_inputs=(), doc="x - logsumexp(x, axis) for the int `axis`; x's shape and dtype")
