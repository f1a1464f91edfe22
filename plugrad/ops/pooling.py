"""2-D max and average pooling and their gradients, as composite ops.

Attributes ``kernel_size``, ``stride``, ``padding`` are pairs of ints; ``count_include_pad`` says
whether padded cells count in an average's divisor (MegEngine's ``"average"`` mode) or not
(``"average_count_exclude_padding"``). Max pooling sends each window's gradient to its first
maximum (in row-major order), as an argmax would. The gradient ops are linear in ``g`` and their
decompositions are differentiable, so they need no vjp of their own.
"""
from __future__ import annotations

import numpy as np

from plugrad.core.dispatch import apply, create
from plugrad.core.registry import composite
from plugrad.functional._utils import host_tensor
from plugrad.ops._windows import col2im, crop_spatial, im2col, out_size, pad_spatial

__all__ = ["pool_out_hw", "valid_counts"]

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


composite("max_pool2d", decomposition=_max_pool2d, vjp=_max_pool2d_vjp,
          doc="maximum over each kh x kw window of (N, C, H, W)")
composite("max_pool2d_grad", decomposition=_max_pool2d_grad,
          doc="gradient of max_pool2d: g routed to each window's first maximum")
composite("avg_pool2d", decomposition=_avg_pool2d, vjp=_avg_pool2d_vjp, keep_inputs=(),
          keep_out=False,
          doc="mean over each kh x kw window of (N, C, H, W)")
composite("avg_pool2d_grad", decomposition=_avg_pool2d_grad,
          doc="gradient of avg_pool2d: g / count spread over each window")
