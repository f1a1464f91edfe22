"""Sliding windows written with primitives: the shared core of the conv and pooling decompositions.

``im2col`` gathers every kernel offset's strided view of a padded input and stacks them on a new
axis; ``col2im`` is its adjoint (each offset's block added back at its strided positions). A
backend with only primitives runs convolution and pooling through these; fused kernels replace them.
"""
from __future__ import annotations

from plugrad.core.dispatch import apply, create
from plugrad.core.tensor import Tensor

__all__ = ["out_size", "pad_spatial", "crop_spatial", "im2col", "col2im", "Pair"]

Pair = tuple[int, int]


def out_size(size: int, kernel: int, stride: int, padding: int, dilation: int = 1) -> int:
    """Output length of a sliding window along one axis (floor mode)."""
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


def _offsets(kernel_size: Pair, dilation: Pair):
    for i in range(kernel_size[0]):
        for j in range(kernel_size[1]):
            yield i * dilation[0], j * dilation[1]


def _window_index(top: int, left: int, out_hw: Pair, stride: Pair) -> tuple:
    return (slice(None), slice(None),
            slice(top, top + (out_hw[0] - 1) * stride[0] + 1, stride[0]),
            slice(left, left + (out_hw[1] - 1) * stride[1] + 1, stride[1]))


def pad_spatial(x: Tensor, padding: Pair, value: float = 0.0) -> Tensor:
    """``x`` (N, C, H, W) padded on both sides of H and W."""
    if padding == (0, 0):
        return x
    width = ((0, 0), (0, 0), (padding[0], padding[0]), (padding[1], padding[1]))
    return apply("pad", x, pad_width=width, value=value)


def crop_spatial(x: Tensor, padding: Pair) -> Tensor:
    """The inverse of :func:`pad_spatial`."""
    if padding == (0, 0):
        return x
    h, w = x.shape[2], x.shape[3]
    index = (slice(None), slice(None), slice(padding[0], h - padding[0]),
             slice(padding[1], w - padding[1]))
    return apply("getitem", x, index=index)


def im2col(padded: Tensor, kernel_size: Pair, stride: Pair, dilation: Pair,
           out_hw: Pair) -> Tensor:
    """(N, C, H, W) -> (N, C, K, OH, OW): axis 2 runs over the K = kh * kw kernel offsets."""
    n, c = padded.shape[0], padded.shape[1]
    block_shape = (n, c, 1) + tuple(out_hw)
    blocks = [apply("reshape", apply("getitem", padded, index=_window_index(top, left, out_hw,
                                                                            stride)),
                    shape=block_shape)
              for top, left in _offsets(kernel_size, dilation)]
    if len(blocks) == 1:
        return blocks[0]
    return apply("concat", *blocks, axis=2)


def col2im(cols: Tensor, padded_shape: tuple[int, ...], kernel_size: Pair, stride: Pair,
           dilation: Pair, out_hw: Pair) -> Tensor:
    """The adjoint of :func:`im2col`: blocks (N, C, K, OH, OW) summed into a padded input.

    A 4-D ``cols`` (N, C, OH, OW) is one block used for every offset (average pooling).
    """
    shared = cols.ndim == 4
    acc = create("full", cols._device, shape=tuple(padded_shape), value=0,
                 dtype=cols._dtype)
    for k, (top, left) in enumerate(_offsets(kernel_size, dilation)):
        block = cols if shared else apply("getitem", cols, index=(slice(None), slice(None), k))
        acc = apply("index_add", acc, block, index=_window_index(top, left, out_hw, stride))
    return acc
