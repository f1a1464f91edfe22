"""Composite activations and the softmax family: decompositions plus vjps for fused kernels."""
from __future__ import annotations

from plugrad import functional as F
from plugrad.core.dispatch import apply
from plugrad.core.registry import composite


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


composite("relu", decomposition=_relu, vjp=_relu_vjp, doc="max(x, 0)")
# Its own op so a backend can fuse it: a multiply by the mask beats a data-dependent select.
composite("relu_grad", decomposition=_relu_grad, doc="g where out > 0, else 0")
composite("sigmoid", decomposition=_sigmoid, vjp=_sigmoid_vjp, doc="1 / (1 + exp(-x))")
composite("logsumexp", decomposition=_logsumexp, vjp=_logsumexp_vjp,
          doc="log(sum(exp(x), axis)), shifted by the maximum")
composite("softmax", decomposition=_softmax, vjp=_softmax_vjp, doc="exp(x) / sum(exp(x), axis)")
composite("logsoftmax", decomposition=_logsoftmax, vjp=_logsoftmax_vjp,
          doc="x - logsumexp(x, axis)")
