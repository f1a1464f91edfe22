"""The CPU's heaviest kernels split over the batch and run on the backend's threads.

Samples of a batch are independent, so each thread runs the ordinary kernel on a slice of the
batch: ``conv2d``, ``conv2d_grad_input``, ``max_pool2d`` and ``max_pool2d_grad`` write their
slices of one output (through the kernels' ``out`` keyword); for ``conv2d_grad_weight`` each
thread computes its share of the per-block products, then they are summed in block order as one
thread sums them. The weight gradient therefore matches the one-thread kernel to the bit; the
other kernels match it to rounding, since a slice's GEMM has another width and BLAS may pick
another micro-kernel for it (AVX-512 OpenBLAS does), so the last bits of a training run can
depend on the thread count (PLUGRAD_NUM_THREADS=1 fixes them). Only calls with enough work are
split (handing work to a thread costs tens
of microseconds), and only float32 / float64 ones, so a float16 gradient keeps its single
float32 accumulation.

Splitting only the GEMMs and im2col copies (one NumPy call per thread, fewer GIL handoffs) was
measured too and lost: on LeNet's layers at batch 64 it was slower than one thread for conv1
(0.57 vs 0.42 ms) and no faster for the others, against 15-30% faster for whole-kernel halves;
at batch 256 whole-kernel halves took 45-55% of the one-thread time, GEMM halves 90-105%.
"""
from __future__ import annotations

from typing import Any, Callable

from plugrad.backends.numpy_backend._threads import bounds, num_threads, run_parts
from plugrad.backends.numpy_backend.conv import _out_size

__all__ = ["split_kernels", "split_grad_weight", "batch_parts", "into_slices", "MIN_SPLIT_MACS",
           "MIN_SPLIT_ELEMENTS"]

#: Multiply-adds below which a convolution runs on one thread (LeNet at batch 16: conv1 1.9 M,
#: conv2 3.8 M).
MIN_SPLIT_MACS = 1_000_000
#: Input elements below which pooling runs on one thread (LeNet's first pooling at batch 64 has
#: 301 K: 0.39 -> 0.30 ms split; its second, 102 K, gained nothing).
MIN_SPLIT_ELEMENTS = 200_000


def batch_parts(n: int, work: int, minimum: int, dtype: Any) -> int:
    """How many slices of a batch of ``n`` to run on threads: one per thread from ``minimum``
    units of ``work`` on, for float32 / float64 only."""
    if dtype.kind != "f" or dtype.itemsize < 4 or work < minimum:
        return 1
    return max(1, min(num_threads(), n))


def into_slices(xp: Any, kernel: Callable, parts: int, shape: tuple, dtype: Any,
                 batched: tuple, **attrs: Any) -> Any:
    """One output of ``shape``; thread ``i`` runs ``kernel`` on its slice of every array in
    ``batched`` and writes its slice of the output."""
    out = xp.empty(shape, dtype=dtype)
    ranges = bounds(shape[0], parts)

    def part(i: int) -> None:
        start, stop = ranges[i]
        kernel(*(a[start:stop] for a in batched), out=out[start:stop], **attrs)

    run_parts(part, parts)
    return out


def split_kernels(kernels: dict[str, Callable], xp: Any) -> dict[str, Callable]:
    """Batch-split forms of the convolution and max-pooling kernels in ``kernels``."""
    conv2d, grad_input = kernels["conv2d"], kernels["conv2d_grad_input"]
    max_pool2d, max_pool2d_grad = kernels["max_pool2d"], kernels["max_pool2d_grad"]

    def conv2d_split(x, w, b=None, *, stride, padding, dilation, groups):
        n, o = x.shape[0], w.shape[0]
        oh, ow = (_out_size(x.shape[2 + i], w.shape[2 + i], stride[i], padding[i], dilation[i])
                  for i in range(2))
        attrs = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
        parts = batch_parts(n, n * o * oh * ow * w[0].size, MIN_SPLIT_MACS, x.dtype)
        if parts == 1:
            return conv2d(x, w, b, **attrs)
        return into_slices(xp, lambda xs, out: conv2d(xs, w, b, out=out, **attrs), parts,
                            (n, o, oh, ow), x.dtype, (x,))

    def grad_input_split(g, w, *, input_shape, stride, padding, dilation, groups):
        attrs = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
        parts = batch_parts(g.shape[0], g.size * w[0].size, MIN_SPLIT_MACS, g.dtype)
        if parts == 1:
            return grad_input(g, w, input_shape=input_shape, **attrs)

        def run(gs, out):
            grad_input(gs, w, input_shape=out.shape, out=out, **attrs)

        return into_slices(xp, run, parts, tuple(input_shape), g.dtype, (g,))

    def max_pool2d_split(x, *, kernel_size, stride, padding):
        attrs = dict(kernel_size=kernel_size, stride=stride, padding=padding)
        parts = batch_parts(x.shape[0], x.size, MIN_SPLIT_ELEMENTS, x.dtype)
        if parts == 1:
            return max_pool2d(x, **attrs)
        oh, ow = (_out_size(x.shape[2 + i], kernel_size[i], stride[i], padding[i], 1)
                  for i in range(2))
        return into_slices(xp, max_pool2d, parts, x.shape[:2] + (oh, ow), x.dtype, (x,),
                            **attrs)

    def max_pool2d_grad_split(g, x, y, *, kernel_size, stride, padding):
        attrs = dict(kernel_size=kernel_size, stride=stride, padding=padding)
        parts = batch_parts(x.shape[0], x.size, MIN_SPLIT_ELEMENTS, x.dtype)
        if parts == 1:
            return max_pool2d_grad(g, x, y, **attrs)
        return into_slices(xp, max_pool2d_grad, parts, x.shape, x.dtype, (g, x, y), **attrs)

    return {"conv2d": conv2d_split, "conv2d_bias": conv2d_split,
            "conv2d_grad_input": grad_input_split,
            "conv2d_grad_weight": split_grad_weight(kernels["conv2d_grad_weight"], xp),
            "max_pool2d": max_pool2d_split,
            "max_pool2d_grad": max_pool2d_grad_split}


def split_grad_weight(grad_weight: Callable, xp: Any) -> Callable:
    """``conv2d_grad_weight`` with its per-block products split over the backend's threads."""

    def grad_weight_split(g, x, *, weight_shape, stride, padding, dilation, groups):
        attrs = dict(weight_shape=weight_shape, stride=stride, padding=padding,
                     dilation=dilation, groups=groups)
        macs = g.size * weight_shape[1] * weight_shape[2] * weight_shape[3]
        parts = batch_parts(g.shape[0], macs, MIN_SPLIT_MACS, g.dtype)
        if parts == 1 or not hasattr(grad_weight, "blocks"):
            return grad_weight(g, x, **attrs)
        # Each thread computes its share of the per-block products; their sum, in block order,
        # is the one-thread kernel's to the bit, whatever the thread count.
        shares: list[Any] = [None] * parts

        def part(i: int) -> None:
            shares[i] = grad_weight.blocks(g, x, share=(i, parts), **attrs)

        run_parts(part, parts)
        # .total comes with .blocks (conv.py); mypy's hasattr narrowing covers only .blocks
        return grad_weight.total(  # type: ignore[attr-defined]
            xp.concatenate(shares), x.dtype, weight_shape)

    return grad_weight_split
