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

from typing import Any

from plugrad.core.dispatch import apply
from plugrad.core.registry import Spec, composite
from plugrad.core.tensor import Tensor
from plugrad.ops import _window_reference as reference
from plugrad.ops._rules import FIXES, need_kind, need_ndim, need_same_dtype
from plugrad.ops._windows import col2im, crop_spatial, im2col, out_size, pad_spatial

__all__ = ["conv_out_hw"]

Pair = tuple[int, int]


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


# -- shape and dtype rules ----------------------------------------------------------------------
def _check_attrs(op: str, stride, padding, dilation, groups) -> None:
    if groups.__class__ is not int or groups < 1:
        raise ValueError(f"{op}: groups must be a positive int; got {groups!r}")
    if stride[0] < 1 or stride[1] < 1 or dilation[0] < 1 or dilation[1] < 1 \
            or padding[0] < 0 or padding[1] < 0:
        raise ValueError(f"{op}: stride {stride} and dilation {dilation} must be at least 1 and "
                         f"padding {padding} at least 0")


def _check_inputs(op: str, x: Any, w: Any) -> None:
    need_kind(op, "input", x, "f", FIXES["f"])
    need_same_dtype(op, ("the input", x), ("the weight", w))
    need_ndim(op, "input", x, 4, "(N, C, H, W)")
    need_ndim(op, "weight", w, 4, "(O, C // groups, kh, kw)")


def _conv2d_rule(x: Any, w: Any, *, stride: Pair, padding: Pair, dilation: Pair,
                 groups: int, op: str = "conv2d") -> Spec:
    x_shape, w_shape, dtype = x.shape, w.shape, x.dtype
    if dtype.kind != "f" or w.dtype != dtype or len(x_shape) != 4 or len(w_shape) != 4:
        _check_inputs(op, x, w)
    _check_attrs(op, stride, padding, dilation, groups)
    out_channels, group_channels, kh, kw = w_shape
    if group_channels * groups != x_shape[1]:
        raise ValueError(f"{op}: the input has {x_shape[1]} channels (shape {tuple(x_shape)}) "
                         f"but the weight of shape {tuple(w_shape)} with groups={groups} expects "
                         f"{group_channels * groups}; the weight's axis 1 must be "
                         f"in_channels // groups")
    if out_channels % groups:
        raise ValueError(f"{op}: {out_channels} output channels cannot be split into "
                         f"{groups} groups")
    out_hw = (out_size(x_shape[2], kh, stride[0], padding[0], dilation[0]),
              out_size(x_shape[3], kw, stride[1], padding[1], dilation[1]))
    if out_hw[0] <= 0 or out_hw[1] <= 0:
        raise ValueError(f"{op}: the input's spatial size {tuple(x_shape[2:])} with padding "
                         f"{padding} is smaller than the kernel {(kh, kw)} with dilation "
                         f"{dilation}; the output would be {out_hw}")
    return Spec((x_shape[0], out_channels) + out_hw, dtype)


def _conv2d_bias_rule(x: Any, w: Any, b: Any, **attrs: Any) -> Spec:
    out = _conv2d_rule(x, w, **attrs, op="conv2d_bias")
    need_same_dtype("conv2d_bias", ("the input", x), ("the bias", b))
    expected = (1, out.shape[1], 1, 1)
    if tuple(b.shape) != expected:
        raise ValueError(f"conv2d_bias: bias of shape {tuple(b.shape)}; expected {expected}, "
                         f"one value per output channel")
    return out


def _grad_rule(op: str, target: str, other_name: str):
    """The rule of a gradient op: g (N, O, OH, OW) from conv2d over ``target``'s shape."""

    def rule(g: Any, other: Any, **attrs: Any) -> Spec:
        shape = tuple(attrs.pop(target))
        need_kind(op, "g", g, "f")
        need_same_dtype(op, ("g", g), (other_name, other))
        _check_attrs(op, attrs["stride"], attrs["padding"], attrs["dilation"], attrs["groups"])
        need_ndim(op, "g", g, 4, "(N, O, OH, OW)")
        if len(shape) != 4 or min(shape) < 0:
            raise ValueError(f"{op}: {target} must be 4 sizes; got {shape}")
        x_shape, w_shape = (shape, tuple(other.shape)) if target == "input_shape" \
            else (tuple(other.shape), shape)
        if len(w_shape) != 4 or len(x_shape) != 4:
            raise ValueError(f"{op}: expected a 4-D {other_name}; got shape {tuple(other.shape)}")
        expected = (x_shape[0], w_shape[0]) + conv_out_hw(x_shape[2:], w_shape[2:], **{
            k: attrs[k] for k in ("stride", "padding", "dilation")})
        if tuple(g.shape) != expected or w_shape[1] * attrs["groups"] != x_shape[1]:
            raise ValueError(f"{op}: g of shape {tuple(g.shape)} is not conv2d's output for an "
                             f"input of shape {x_shape} and a weight of shape {w_shape} with "
                             f"{attrs}; expected g of shape {expected}")
        return Spec(shape, g.dtype)

    rule.__name__ = f"{op}_rule"
    return rule


_CONV = "stride: tuple[int, int], padding: tuple[int, int], dilation: tuple[int, int], groups: int"
_PAIRS = "stride, padding, dilation are (h, w) pairs, groups an int"
composite("conv2d", f"x, w, *, {_CONV}", rule=_conv2d_rule,
          reference=reference.conv2d_reference, decomposition=_conv2d, vjp=_conv2d_vjp,
          keep_out=False,
          doc=f"x (N, C, H, W), w (O, C // groups, kh, kw); {_PAIRS}; (N, O, OH, OW) in x's dtype")
composite("conv2d_bias", f"x, w, b, *, {_CONV}", rule=_conv2d_bias_rule,
          reference=reference.conv2d_bias_reference, decomposition=_conv2d_bias,
          vjp=_conv2d_vjp, keep_inputs=(0, 1), keep_out=False,
          doc=f"x and w as conv2d's, b (1, O, 1, 1); {_PAIRS}; conv2d(x, w) + b in x's dtype")
composite("conv2d_grad_input", f"g, w, *, input_shape: tuple[int, int, int, int], {_CONV}",
          rule=_grad_rule("conv2d_grad_input", "input_shape", "w"),
          reference=reference.conv2d_grad_input_reference, decomposition=_conv2d_grad_input,
          vjp=_conv2d_grad_input_vjp, keep_out=False,
          doc=f"g (N, O, OH, OW), w as conv2d's, `input_shape` (N, C, H, W); {_PAIRS}; the "
              f"input gradient of conv2d (the transposed convolution), g's dtype")
composite("conv2d_grad_weight", f"g, x, *, weight_shape: tuple[int, int, int, int], {_CONV}",
          rule=_grad_rule("conv2d_grad_weight", "weight_shape", "x"),
          reference=reference.conv2d_grad_weight_reference, decomposition=_conv2d_grad_weight,
          vjp=_conv2d_grad_weight_vjp, keep_out=False,
          doc=f"g (N, O, OH, OW), x (N, C, H, W), `weight_shape` (O, C // groups, kh, kw); "
              f"{_PAIRS}; the weight gradient of conv2d, g's dtype")
