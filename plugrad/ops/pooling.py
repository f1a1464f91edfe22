"""2-D max and average pooling and their gradients, as composite ops.

Attributes ``kernel_size``, ``stride``, ``padding`` are pairs of ints; ``count_include_pad`` says
whether padded cells count in an average's divisor (MegEngine's ``"average"`` mode) or not
(``"average_count_exclude_padding"``). Max pooling sends each window's gradient to its first
maximum (in row-major order), as an argmax would. The gradient ops are linear in ``g`` and their
decompositions are differentiable, so they need no vjp of their own.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from plugrad.core.dispatch import apply, create
from plugrad.core.registry import Spec, composite
from plugrad.functional._utils import host_tensor
from plugrad.ops import _window_reference as reference
from plugrad.ops._rules import FIXES, need_kind, need_ndim, need_same_dtype
from plugrad.ops._windows import col2im, crop_spatial, im2col, out_size, pad_spatial

__all__ = ["pool_out_hw", "valid_counts"]

Pair = tuple[int, int]

_ONE = (1, 1)


def pool_out_hw(in_hw, kernel_size, stride, padding) -> tuple[int, int]:
    """(OH, OW) of a pooling window sweep (floor mode, no dilation)."""
    return (out_size(in_hw[0], kernel_size[0], stride[0], padding[0]),
            out_size(in_hw[1], kernel_size[1], stride[1], padding[1]))


def valid_counts(in_hw, kernel_size, stride, padding, out_hw) -> np.ndarray:
    """(OH, OW) float64: how many cells of each window lie inside the unpadded input."""
    def along(size, k, s, p, n):
        start = np.arange(n) * s - p
        return np.minimum(start + k, size) - np.maximum(start, 0)

    rows = along(in_hw[0], kernel_size[0], stride[0], padding[0], out_hw[0])
    cols = along(in_hw[1], kernel_size[1], stride[1], padding[1], out_hw[1])
    return np.outer(rows, cols).astype(np.float64)


def _windows(x, kernel_size, stride, padding, fill):
    out_hw = pool_out_hw(x.shape[2:], kernel_size, stride, padding)
    return im2col(pad_spatial(x, padding, fill), kernel_size, stride, _ONE, out_hw), out_hw


def _padded_shape(shape, padding):
    n, c, h, w = shape
    return (n, c, h + 2 * padding[0], w + 2 * padding[1])


# -- max --------------------------------------------------------------------------------------
def _max_pool2d(x, *, kernel_size, stride, padding):
    cols, _ = _windows(x, kernel_size, stride, padding, float("-inf"))
    return apply("max", cols, axis=(2,), keepdims=False)


def _max_pool2d_vjp(ctx, g):
    x, = ctx.inputs
    return (apply("max_pool2d_grad", g, x, ctx.out, **ctx.attrs),)


def _max_pool2d_grad(g, x, y, *, kernel_size, stride, padding):
    n, c = x.shape[0], x.shape[1]
    cols, out_hw = _windows(x, kernel_size, stride, padding, float("-inf"))
    k = kernel_size[0] * kernel_size[1]
    hit = apply("eq", cols, apply("reshape", y, shape=(n, c, 1) + out_hw))
    first = apply("argmax", apply("cast", hit, dtype=np.dtype("int8")), axis=2, keepdims=True)
    offsets = create("arange", x._device, start=0, stop=k, step=1, dtype=first._dtype)
    offsets = apply("reshape", offsets, shape=(1, 1, k, 1, 1))
    chosen = apply("cast", apply("eq", first, offsets), dtype=g._dtype)
    blocks = apply("mul", chosen, apply("reshape", g, shape=(n, c, 1) + out_hw))
    padded = col2im(blocks, _padded_shape(x.shape, padding), kernel_size, stride, _ONE, out_hw)
    return crop_spatial(padded, padding)


# -- average ----------------------------------------------------------------------------------
def _divisor(like, in_hw, kernel_size, stride, padding, count_include_pad, out_hw):
    if count_include_pad:
        counts = np.full(out_hw, float(kernel_size[0] * kernel_size[1]))
    else:
        counts = valid_counts(in_hw, kernel_size, stride, padding, out_hw)
    return host_tensor((1.0 / counts).astype(like._dtype), like)


def _avg_pool2d(x, *, kernel_size, stride, padding, count_include_pad):
    cols, out_hw = _windows(x, kernel_size, stride, padding, 0.0)
    total = apply("sum", cols, axis=(2,), keepdims=False)
    scale = _divisor(x, x.shape[2:], kernel_size, stride, padding, count_include_pad, out_hw)
    return apply("mul", total, scale)


def _avg_pool2d_vjp(ctx, g):
    x, = ctx.inputs
    return (apply("avg_pool2d_grad", g, input_shape=tuple(x.shape), **ctx.attrs),)


def _avg_pool2d_grad(g, *, input_shape, kernel_size, stride, padding, count_include_pad):
    out_hw = (g.shape[2], g.shape[3])
    scale = _divisor(g, input_shape[2:], kernel_size, stride, padding, count_include_pad, out_hw)
    block = apply("mul", g, scale)
    padded = col2im(block, _padded_shape(input_shape, padding), kernel_size, stride, _ONE,
                    out_hw)
    return crop_spatial(padded, padding)


# -- shape and dtype rules ----------------------------------------------------------------------
def _window_rule(op: str, x: Any, kernel_size, stride, padding) -> tuple[int, int]:
    """(OH, OW) of a valid window sweep over the 4-D float ``x`` (every LeNet step runs this)."""
    shape = x.shape
    if x.dtype.kind != "f" or len(shape) != 4:
        need_kind(op, "input", x, "f", FIXES["f"])
        need_ndim(op, "input", x, 4, "(N, C, H, W)")
    (kh, kw), (sh, sw), (ph, pw) = kernel_size, stride, padding
    if kh < 1 or kw < 1 or sh < 1 or sw < 1 or ph < 0 or pw < 0:
        raise ValueError(f"{op}: kernel_size {kernel_size} and stride {stride} must be at least "
                         f"1 and padding {padding} at least 0")
    if 2 * ph > kh or 2 * pw > kw:
        raise ValueError(f"{op}: padding {padding} must be at most half the kernel size "
                         f"{kernel_size}, so no window lies entirely in the padding")
    out_hw = out_size(shape[2], kh, sh, ph), out_size(shape[3], kw, sw, pw)
    if out_hw[0] <= 0 or out_hw[1] <= 0:
        raise ValueError(f"{op}: the input's spatial size {tuple(shape[2:])} with padding "
                         f"{padding} is smaller than the kernel {kernel_size}")
    return out_hw


def _max_pool2d_rule(x: Any, *, kernel_size: Pair, stride: Pair, padding: Pair) -> Spec:
    out_hw = _window_rule("max_pool2d", x, kernel_size, stride, padding)
    return Spec(x.shape[:2] + out_hw, x.dtype)


def _avg_pool2d_rule(x: Any, *, kernel_size: Pair, stride: Pair, padding: Pair,
                     count_include_pad: bool) -> Spec:
    out_hw = _window_rule("avg_pool2d", x, kernel_size, stride, padding)
    return Spec(x.shape[:2] + out_hw, x.dtype)


def _check_g(op: str, g: Any, input_shape: tuple, kernel_size, stride, padding) -> None:
    need_kind(op, "g", g, "f")
    expected = tuple(input_shape[:2]) + pool_out_hw(input_shape[2:], kernel_size, stride,
                                                    padding)
    if tuple(g.shape) != expected:
        raise ValueError(f"{op}: g of shape {tuple(g.shape)} is not the pooled shape of an input "
                         f"of shape {tuple(input_shape)}; expected {expected}")


def _max_pool2d_grad_rule(g: Any, x: Any, y: Any, *, kernel_size: Pair, stride: Pair,
                          padding: Pair) -> Spec:
    need_same_dtype("max_pool2d_grad", ("g", g), ("x", x), ("y", y))
    _check_g("max_pool2d_grad", g, tuple(x.shape), kernel_size, stride, padding)
    if tuple(y.shape) != tuple(g.shape):
        raise ValueError(f"max_pool2d_grad: y of shape {tuple(y.shape)} must have g's shape "
                         f"{tuple(g.shape)}")
    return Spec(tuple(x.shape), g.dtype)


def _avg_pool2d_grad_rule(g: Any, *, input_shape: tuple[int, int, int, int], kernel_size: Pair,
                          stride: Pair, padding: Pair, count_include_pad: bool) -> Spec:
    _check_g("avg_pool2d_grad", g, tuple(input_shape), kernel_size, stride, padding)
    return Spec(tuple(input_shape), g.dtype)


_WINDOW = "kernel_size: tuple[int, int], stride: tuple[int, int], padding: tuple[int, int]"
_POOL = "kernel_size, stride, padding are (h, w) pairs"
composite("max_pool2d", f"x, *, {_WINDOW}", rule=_max_pool2d_rule,
          reference=reference.max_pool2d_reference, decomposition=_max_pool2d,
          vjp=_max_pool2d_vjp,
          doc=f"x (N, C, H, W); {_POOL}; the maximum of each window (padding never wins), x's "
              f"dtype")
composite("max_pool2d_grad", f"g, x, y, *, {_WINDOW}", rule=_max_pool2d_grad_rule,
          reference=reference.max_pool2d_grad_reference, decomposition=_max_pool2d_grad,
          doc=f"g and y = max_pool2d(x) (N, C, OH, OW), x (N, C, H, W); {_POOL}; g sent to each "
              f"window's first maximum in row-major order, x's shape, g's dtype")
composite("avg_pool2d", f"x, *, {_WINDOW}, count_include_pad: bool", rule=_avg_pool2d_rule,
          reference=reference.avg_pool2d_reference, decomposition=_avg_pool2d,
          vjp=_avg_pool2d_vjp, keep_inputs=(), keep_out=False,
          doc=f"x (N, C, H, W); {_POOL}; `count_include_pad` says whether padded cells count in "
              f"the divisor; the mean of each window, x's dtype")
composite("avg_pool2d_grad",
          f"g, *, input_shape: tuple[int, int, int, int], {_WINDOW}, count_include_pad: bool",
          rule=_avg_pool2d_grad_rule, reference=reference.avg_pool2d_grad_reference,
          decomposition=_avg_pool2d_grad,
          doc=f"g (N, C, OH, OW), `input_shape` (N, C, H, W); {_POOL}, `count_include_pad`; each "
              f"window's g / count spread over it, g's dtype")
