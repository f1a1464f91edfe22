"""2-D convolution and its two gradients, as composite ops.

Layout: input (N, C, H, W), weight (O, C // groups, kh, kw), bias (1, O, 1, 1), output
(N, O, OH, OW); attributes ``stride``, ``padding``, ``dilation`` are pairs of ints and ``groups``
an int. The decompositions
are im2col over primitives (pad, strided getitem, concat, reshape) plus one batched matmul; the
two gradient ops are themselves composites, so a backend may fuse any of the three, and each has
a vjp, which makes convolution differentiable twice and gives ``conv_transpose2d`` for free
(it is ``conv2d_grad_input`` of the transposed layer). ``conv2d_bias`` is the convolution plus
its bias in one op, so a kernel adds the bias while writing its output instead of a second pass
over it; its decomposition is ``conv2d`` then ``add``, so a backend that fuses only ``conv2d``
still runs it.
"""
from __future__ import annotations

from plugrad.core.dispatch import apply
from plugrad.core.registry import composite
from plugrad.core.tensor import Tensor
from plugrad.ops._windows import col2im, crop_spatial, im2col, out_size, pad_spatial

__all__ = ["conv_out_hw"]


def conv_out_hw(in_hw, kernel_size, stride, padding, dilation) -> tuple[int, int]:
    """(OH, OW) of a convolution."""
    return (out_size(in_hw[0], kernel_size[0], stride[0], padding[0], dilation[0]),
            out_size(in_hw[1], kernel_size[1], stride[1], padding[1], dilation[1]))


def _columns(x: Tensor, kernel_size, stride, padding, dilation, groups, out_hw) -> Tensor:
    """(N, groups, C // groups * kh * kw, OH * OW): each output position's receptive field."""
    n, c = x.shape[0], x.shape[1]
    cols = im2col(pad_spatial(x, padding), kernel_size, stride, dilation, out_hw)
    k = kernel_size[0] * kernel_size[1]
    return apply("reshape", cols, shape=(n, groups, c // groups * k, out_hw[0] * out_hw[1]))


def _swap_last(x: Tensor) -> Tensor:
    perm = tuple(range(x.ndim - 2)) + (x.ndim - 1, x.ndim - 2)
    return apply("transpose", x, perm=perm)


# -- conv2d and conv2d_bias -----------------------------------------------------------------
def _conv2d(x, w, *, stride, padding, dilation, groups):
    n = x.shape[0]
    o, cg, kh, kw = w.shape
    out_hw = conv_out_hw(x.shape[2:], (kh, kw), stride, padding, dilation)
    cols = _columns(x, (kh, kw), stride, padding, dilation, groups, out_hw)
    wm = apply("reshape", w, shape=(groups, o // groups, cg * kh * kw))
    out = apply("matmul", wm, cols)  # (N, groups, O // groups, OH * OW)
    return apply("reshape", out, shape=(n, o) + out_hw)


def _conv2d_bias(x, w, b, **attrs):
    return apply("add", apply("conv2d", x, w, **attrs), b)


def _conv2d_vjp(ctx, g):
    # The input's gradient last: it is what the next vjp reads, so it is still in cache (the
    # other order made a LeNet step 0.2-0.4 ms slower).
    x, w = ctx.inputs[:2]
    attrs, needs = ctx.attrs, ctx.needs
    gb = apply("sum", g, axis=(0, 2, 3), keepdims=True) if len(needs) == 3 and needs[2] else None
    gw = apply("conv2d_grad_weight", g, x, weight_shape=tuple(w.shape), **attrs) \
        if needs[1] else None
    gx = apply("conv2d_grad_input", g, w, input_shape=tuple(x.shape), **attrs) \
        if needs[0] else None
    return (gx, gw) if len(needs) == 2 else (gx, gw, gb)


# -- gradient with respect to the input (also the transposed convolution) --------------------
def _conv2d_grad_input(g, w, *, input_shape, stride, padding, dilation, groups):
    n, c, h, wd = input_shape
    o, cg, kh, kw = w.shape
    out_hw = (g.shape[2], g.shape[3])
    gm = apply("reshape", g, shape=(n, groups, o // groups, out_hw[0] * out_hw[1]))
    wm = apply("reshape", w, shape=(groups, o // groups, cg * kh * kw))
    cols = apply("matmul", _swap_last(wm), gm)  # (N, groups, C // groups * K, L)
    cols = apply("reshape", cols, shape=(n, c, kh * kw) + out_hw)
    padded_shape = (n, c, h + 2 * padding[0], wd + 2 * padding[1])
    padded = col2im(cols, padded_shape, (kh, kw), stride, dilation, out_hw)
    return crop_spatial(padded, padding)


def _conv2d_grad_input_vjp(ctx, g):
    # out = J_x^T dy is bilinear in (dy, w): d/d(dy) is conv2d(g, w), d/dw is grad_weight(dy, g).
    dy, w = ctx.inputs
    attrs = {k: v for k, v in ctx.attrs.items() if k != "input_shape"}
    gdy = apply("conv2d", g, w, **attrs) if ctx.needs[0] else None
    gw = apply("conv2d_grad_weight", dy, g, weight_shape=tuple(w.shape), **attrs) \
        if ctx.needs[1] else None
    return gdy, gw


# -- gradient with respect to the weight ------------------------------------------------------
def _conv2d_grad_weight(g, x, *, weight_shape, stride, padding, dilation, groups):
    n = x.shape[0]
    o, cg, kh, kw = weight_shape
    out_hw = (g.shape[2], g.shape[3])
    cols = _columns(x, (kh, kw), stride, padding, dilation, groups, out_hw)
    gm = apply("reshape", g, shape=(n, groups, o // groups, out_hw[0] * out_hw[1]))
    gw = apply("matmul", gm, _swap_last(cols))  # (N, groups, O // groups, C // groups * K)
    gw = apply("sum", gw, axis=(0,), keepdims=False)
    return apply("reshape", gw, shape=tuple(weight_shape))


def _conv2d_grad_weight_vjp(ctx, g):
    # out = sum_n dy (x) x is bilinear in (dy, x): d/d(dy) is conv2d(x, g), d/dx grad_input(dy, g).
    dy, x = ctx.inputs
    attrs = {k: v for k, v in ctx.attrs.items() if k != "weight_shape"}
    gdy = apply("conv2d", x, g, **attrs) if ctx.needs[0] else None
    gx = apply("conv2d_grad_input", dy, g, input_shape=tuple(x.shape), **attrs) \
        if ctx.needs[1] else None
    return gdy, gx


composite("conv2d", decomposition=_conv2d, vjp=_conv2d_vjp, keep_out=False,
          doc="cross-correlation of (N, C, H, W) with (O, C/groups, kh, kw)")
composite("conv2d_bias", decomposition=_conv2d_bias, vjp=_conv2d_vjp, keep_inputs=(0, 1),
          keep_out=False, doc="conv2d plus a (1, O, 1, 1) bias, in one kernel where a backend "
                              "fuses it")
composite("conv2d_grad_input", decomposition=_conv2d_grad_input, vjp=_conv2d_grad_input_vjp,
          keep_out=False,
          doc="gradient of conv2d with respect to its input (the transposed convolution)")
composite("conv2d_grad_weight", decomposition=_conv2d_grad_weight, vjp=_conv2d_grad_weight_vjp,
          keep_out=False,
          doc="gradient of conv2d with respect to its weight")
