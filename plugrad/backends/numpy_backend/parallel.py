"""The convolution kernels split over the batch and run on the backend's threads.

Samples of a batch are independent, so each thread runs the ordinary kernel on a slice of the
batch: ``conv2d`` and ``conv2d_grad_input`` write their slices of one output, and
``conv2d_grad_weight`` sums the slices' partial gradients. Only calls with enough work are split
(the handoff to a thread costs tens of microseconds), and only float32 / float64 ones, so a
float16 gradient keeps its single float32 accumulation.

Splitting only the GEMMs and im2col copies (one NumPy call per thread, fewer GIL handoffs) was
measured too and lost: on LeNet's layers at batch 64 it was slower than one thread for conv1
(0.57 vs 0.42 ms) and no faster for the others, against 15-30% faster for whole-kernel halves;
at batch 256 whole-kernel halves took 45-55% of the one-thread time, GEMM halves 90-105%.
"""
from __future__ import annotations

from typing import Any, Callable

from plugrad.backends.numpy_backend._threads import num_threads, run_parts
from plugrad.backends.numpy_backend.conv import _out_size

__all__ = ["split_conv_kernels", "MIN_SPLIT_MACS"]

#: Multiply-adds below which a call runs on one thread (LeNet at batch 16: conv1 1.9 M, conv2
#: 3.8 M; measured with benchmarks/report.py's batch scaling).
MIN_SPLIT_MACS = 1_000_000


def _bounds(n: int, parts: int) -> list[tuple[int, int]]:
    step, extra = divmod(n, parts)
    bounds, start = [], 0
    for i in range(parts):
        stop = start + step + (1 if i < extra else 0)
        bounds.append((start, stop))
        start = stop
    return bounds


def _parts(n: int, macs: int, dtype: Any) -> int:
    if dtype.kind != "f" or dtype.itemsize < 4 or macs < MIN_SPLIT_MACS:
        return 1
    return min(num_threads(), n)


def split_conv_kernels(kernels: dict[str, Callable], xp: Any) -> dict[str, Callable]:
    """Batch-split forms of ``conv2d``, ``conv2d_grad_input`` and ``conv2d_grad_weight``."""
    conv2d = kernels["conv2d"]
    grad_input = kernels["conv2d_grad_input"]
    grad_weight = kernels["conv2d_grad_weight"]

    def out_hw(in_hw, weight_shape, stride, padding, dilation):
        return tuple(_out_size(in_hw[i], weight_shape[2 + i], stride[i], padding[i],
                               dilation[i]) for i in range(2))

    def conv2d_split(x, w, *, stride, padding, dilation, groups):
        n = x.shape[0]
        oh, ow = out_hw(x.shape[2:], w.shape, stride, padding, dilation)
        o = w.shape[0]
        parts = _parts(n, n * o * oh * ow * w[0].size, x.dtype)
        attrs = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
        if parts == 1:
            return conv2d(x, w, **attrs)
        out = xp.empty((n, o, oh, ow), dtype=x.dtype)
        bounds = _bounds(n, parts)

        def part(i: int) -> None:
            start, stop = bounds[i]
            conv2d(x[start:stop], w, out=out[start:stop], **attrs)

        run_parts(part, parts)
        return out

    def grad_input_split(g, w, *, input_shape, stride, padding, dilation, groups):
        n = g.shape[0]
        parts = _parts(n, g.size * w[0].size, g.dtype)
        attrs = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
        if parts == 1:
            return grad_input(g, w, input_shape=input_shape, **attrs)
        out = xp.empty(tuple(input_shape), dtype=g.dtype)
        bounds = _bounds(n, parts)

        def part(i: int) -> None:
            start, stop = bounds[i]
            grad_input(g[start:stop], w, input_shape=(stop - start,) + tuple(input_shape[1:]),
                       out=out[start:stop], **attrs)

        run_parts(part, parts)
        return out

    def grad_weight_split(g, x, *, weight_shape, stride, padding, dilation, groups):
        n = g.shape[0]
        per_output = weight_shape[1] * weight_shape[2] * weight_shape[3]
        parts = _parts(n, g.size * per_output, g.dtype)
        attrs = dict(weight_shape=weight_shape, stride=stride, padding=padding,
                     dilation=dilation, groups=groups)
        if parts == 1:
            return grad_weight(g, x, **attrs)
        partial: list[Any] = [None] * parts
        bounds = _bounds(n, parts)

        def part(i: int) -> None:
            start, stop = bounds[i]
            partial[i] = grad_weight(g[start:stop], x[start:stop], **attrs)

        run_parts(part, parts)
        total = partial[0]
        for other in partial[1:]:
            total += other
        return total

    return {"conv2d": conv2d_split, "conv2d_grad_input": grad_input_split,
            "conv2d_grad_weight": grad_weight_split}
