"""Batch normalisation in training mode on the CPU: the forward, its statistics and its backward.

Overrides of the array-module kernel ``nn.py``'s ``batch_norm`` and the kernels of the fused ops
of ``plugrad.ops.batch_norm``, fastest in the usual layout: channels on axis 1, statistics over
every other axis. The activation is viewed as ``(N, C, M)`` (``M`` the spatial size), and the
per-channel reductions are BLAS calls: a sum is ``(N*C, M) @ ones(M)`` then a sum over ``N``, a
sum of products a batched dot. NumPy's own ``sum(axis=(0, 2, 3))`` walks the array with a
stride per axis and measured about 6x slower, ``einsum`` 2x. Each kernel is a few passes:

* forward, given the statistics: ``x * scale + shift`` (per-channel ``scale, shift``).
* statistics: the mean, then the variance from ``x - mean`` (a temporary).
* parameter gradients: ``sum(g)`` and ``sum(g * (x - mean))``.
* input gradient: ``a * g + b * x + c`` with per-channel ``a, b, c``.

Those passes are :class:`NumpyLoops`' methods; with numba installed, ``compiled.CompiledLoops``
runs each as one compiled loop instead, and everything else here stays the same.

Large inputs are split over the batch (rows of the ``(N, C, M)`` view) and run on the backend's
threads (``_threads.run_parts``, as the convolutions are): the elementwise kernels from
:data:`MIN_SPLIT_ELEMENTS` on, one range per thread; the reductions from
:data:`MIN_SPLIT_REDUCTION` on, always in :data:`REDUCTION_PARTS` ranges, each reduced per
channel, then merged in range order. So every result is the same to the bit on any number of
threads.

The variance and the parameter gradients are sums over centred values (never
``E[x^2] - mean^2``), so float32 keeps the accuracy of the two-pass formula when ``|mean|`` is
large against the spread. The affine kernels use x itself (``x * scale + shift``, and
``a * g + b * x + c`` for the input gradient: two and four passes where the centred forms take
three and five); their rounding, about ``|mean| / std`` float32 epsilons, is of the order that
rounding the mean to float32 already costs the centred forms (measured: 0.7-2.3x their largest
error, for means 130-1000 standard deviations from zero). float16 computes in float32. Other
``axes`` are moved to the front first (a copy), so any reduction works.
"""
from __future__ import annotations

import math
from typing import Callable

import numpy as np

from plugrad.backends.numpy_backend._threads import bounds, num_threads, run_parts

__all__ = ["kernels", "NumpyLoops", "MIN_SPLIT_ELEMENTS", "MIN_SPLIT_REDUCTION", "REDUCTION_PARTS"]

#: Elements of x from which the elementwise kernels (the forward, the input gradient) split
#: over the threads. Measured on 2 shared cores against one thread (median wall time):
#: 64x32x16x16 (524 K) 0.75-0.9x as long, 64x16x16x16 (262 K) 0.95-1.2x, 64x64x4x4 1.15-1.35x.
MIN_SPLIT_ELEMENTS = 1 << 19
#: Elements of x from which the reductions (statistics, parameter gradients) split:
#: 64x16x32x32 (1 M) 0.7-0.9x as long, 64x32x16x16 0.95-1.1x.
MIN_SPLIT_REDUCTION = 1 << 20
#: Ranges a split reduction sums separately: fixed, so its rounding is the thread count's
#: neither (two: the default thread count, and more parts cost more than they balance).
REDUCTION_PARTS = 2

_F32 = np.dtype(np.float32)


class _Layout:
    """How the kernels view an array reduced over ``axes``: ``(N, C, M)``, C the kept values.

    With channels on axis 1 (the usual case) that is a reshape of the array; other ``axes`` are
    moved to the front first, giving ``(reduced, kept, 1)``.
    """

    def __init__(self, shape: tuple[int, ...], axes: tuple[int, ...]):
        self.shape = shape
        ndim = len(shape)
        kept = tuple(i for i in range(ndim) if i not in axes)
        self.usual = ndim >= 2 and tuple(axes) == (0,) + tuple(range(2, ndim))
        self.perm = tuple(axes) + kept
        reduced = int(np.prod([shape[i] for i in axes], dtype=np.int64))
        self.kept = int(np.prod([shape[i] for i in kept], dtype=np.int64))
        self.count = reduced

    def view(self, a: np.ndarray, dtype: np.dtype) -> np.ndarray:
        """``a`` as a C-contiguous ``(N, C, M)`` array in ``dtype`` (a view when it can be)."""
        if self.usual:
            spatial = math.prod(a.shape[2:])  # spelled out: -1 is not inferred for an empty batch
            return np.ascontiguousarray(a, dtype=dtype).reshape(a.shape[0], a.shape[1], spatial)
        moved = np.ascontiguousarray(a.transpose(self.perm), dtype=dtype)
        return moved.reshape(self.count, self.kept, 1)

    def restore(self, a: np.ndarray, dtype: np.dtype) -> np.ndarray:
        """An ``(N, C, M)`` result back in the original shape and ``dtype``."""
        if self.usual:
            return a.reshape(self.shape).astype(dtype, copy=False)
        moved = a.reshape(tuple(self.shape[i] for i in self.perm))
        return np.ascontiguousarray(moved.transpose(np.argsort(self.perm)), dtype=dtype)


def _compute_dtype(dtype: np.dtype) -> np.dtype:
    return _F32 if dtype.itemsize < 4 else dtype  # no BLAS for float16


def _channel_sum(a: np.ndarray) -> np.ndarray:
    """Per-channel sums ``(C,)`` of an ``(N, C, M)`` array."""
    n, c, m = a.shape
    if m == 1:
        return a[:, :, 0].sum(axis=0)
    rows = a.reshape(n * c, m) @ np.ones(m, dtype=a.dtype)  # gemv, not a strided reduction
    return rows.reshape(n, c).sum(axis=0)


def _channel_dot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-channel ``sum(a * b)`` ``(C,)`` of two ``(N, C, M)`` arrays, with no product array."""
    n, c, m = a.shape
    if m == 1:
        return np.einsum("nc,nc->c", a[:, :, 0], b[:, :, 0])
    dots = np.matmul(a.reshape(n * c, 1, m), b.reshape(n * c, m, 1))
    return dots.reshape(n, c).sum(axis=0)


def _split(a: np.ndarray, parts: int, minimum: int) -> list[tuple[int, int]]:
    """Row ranges of an ``(N, C, M)`` array to work on: ``parts`` of them from ``minimum``
    elements on, else the whole array."""
    n = a.shape[0]
    parts = min(parts, n)
    return bounds(n, parts) if parts > 1 and a.size >= minimum else [(0, n)]


def _over_ranges(ranges: list[tuple[int, int]], fn: Callable[[int, int, int], None]) -> None:
    """``fn(i, start, stop)`` for each range, on the backend's threads when there are several."""
    if len(ranges) == 1:
        fn(0, *ranges[0])
    else:
        run_parts(lambda i: fn(i, *ranges[i]), len(ranges))


class NumpyLoops:
    """The passes over a range of rows of ``(N, C, M)`` arrays, in NumPy and BLAS calls.

    :class:`compiled.CompiledLoops` has the same methods as compiled loops; ``kernels(loops)``
    splits the rows, merges the ranges' results and keeps the layouts, whichever runs.
    Per-channel arguments and results are ``(C,)`` vectors.
    """

    #: Elements from which the elementwise passes, and the reductions, split over threads.
    split_elements = MIN_SPLIT_ELEMENTS
    split_reduction = MIN_SPLIT_REDUCTION

    @classmethod
    def for_rows(cls, length: int) -> type[NumpyLoops]:
        """The loops for rows of ``length`` values (``M``): these, for any length."""
        return cls

    @staticmethod
    def mean_squares(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per-channel mean and sum of squared deviations: two passes."""
        mean = _channel_sum(x) / x.dtype.type(max(x.shape[0] * x.shape[2], 1))
        centred = x - mean[:, None]
        return mean, _channel_dot(centred, centred)

    @staticmethod
    def affine(x: np.ndarray, scale: np.ndarray, shift: np.ndarray, out: np.ndarray) -> None:
        """``out = x * scale + shift`` per channel."""
        np.multiply(x, scale[:, None], out=out)
        out += shift[:, None]

    @staticmethod
    def centred_dot_sum(g: np.ndarray, x: np.ndarray,
                        mean: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per-channel ``sum(g * (x - mean))`` and ``sum(g)``."""
        return _channel_dot(g, x - mean[:, None]), _channel_sum(g)

    @staticmethod
    def affine2(g: np.ndarray, x: np.ndarray, a: np.ndarray, b: np.ndarray, c: np.ndarray,
                out: np.ndarray) -> None:
        """``out = a * g + b * x + c`` per channel: four passes, where
        ``a * (g - mean(g)) + b * (x - mean)`` takes five."""
        np.multiply(x, b[:, None], out=out)
        out += c[:, None]
        out += g * a[:, None]


def _mean_var(x: np.ndarray, loops: type[NumpyLoops]) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel ``(mean, biased variance)`` of an ``(N, C, M)`` array.

    Each range of rows gets its mean and sum of squared deviations; the ranges' are then merged
    in order (Chan, Golub and LeVeque's pairwise update), so a split costs one hand-over to the
    threads, not one per pass.
    """
    ranges = _split(x, REDUCTION_PARTS, loops.split_reduction)
    per_row = x.shape[2]
    partial = np.empty((len(ranges), 2, x.shape[1]), dtype=x.dtype)

    def part(i: int, start: int, stop: int) -> None:
        partial[i] = loops.mean_squares(x[start:stop])

    _over_ranges(ranges, part)
    (mean, squares), count = partial[0], (ranges[0][1] - ranges[0][0]) * per_row
    for (more_mean, more_squares), (start, stop) in zip(partial[1:], ranges[1:]):
        more = (stop - start) * per_row
        total = count + more
        delta = more_mean - mean
        mean = mean + delta * x.dtype.type(more / total)
        squares = squares + more_squares + delta * delta * x.dtype.type(count * more / total)
        count = total
    return mean, squares / x.dtype.type(max(count, 1))


def _per_channel(a: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """A ``(1, C, 1, ...)`` parameter or statistic as a contiguous ``(C,)`` vector in ``dtype``."""
    return np.ascontiguousarray(a.reshape(-1), dtype=dtype)


def kernels(loops: type[NumpyLoops] = NumpyLoops) -> dict[str, Callable]:
    """The batch-norm kernels of the numpy backend, their passes run by ``loops`` (by
    ``loops.for_rows``: the loops for the layout's row length)."""

    def elementwise(passes: type[NumpyLoops], a: np.ndarray,
                    fn: Callable[[int, int, int], None]) -> None:
        """``fn(i, start, stop)`` over row ranges of ``a``, one per thread when ``a`` is large."""
        _over_ranges(_split(a, num_threads(), passes.split_elements), fn)

    def batch_norm(x, weight, bias, stats, *, axes, eps):
        layout = _Layout(x.shape, axes)
        ct = _compute_dtype(x.dtype)
        x3 = layout.view(x, ct)
        mean, var = (_per_channel(row, ct) for row in stats)
        scale = _per_channel(weight, ct) / np.sqrt(var + ct.type(eps))
        shift = _per_channel(bias, ct) - mean * scale
        out = np.empty_like(x3)
        passes = loops.for_rows(x3.shape[2])
        elementwise(passes, x3, lambda _, start, stop: passes.affine(
            x3[start:stop], scale, shift, out[start:stop]))
        return layout.restore(out, x.dtype)

    def batch_norm_stats(x, *, axes):
        ct = _compute_dtype(x.dtype)
        x3 = _Layout(x.shape, axes).view(x, ct)
        mean, var = _mean_var(x3, loops.for_rows(x3.shape[2]))
        shape = (2,) + tuple(1 if i in axes else size for i, size in enumerate(x.shape))
        return np.stack([mean, var]).astype(x.dtype, copy=False).reshape(shape)

    def batch_norm_grad_params(g, x, stats, *, axes, eps):
        layout = _Layout(x.shape, axes)
        ct = _compute_dtype(x.dtype)
        g3, x3 = layout.view(g, ct), layout.view(x, ct)
        mean, var = (_per_channel(row, ct) for row in stats)
        passes = loops.for_rows(x3.shape[2])
        ranges = _split(x3, REDUCTION_PARTS, passes.split_reduction)
        partial = np.empty((len(ranges), 2, x3.shape[1]), dtype=ct)

        def part(i: int, start: int, stop: int) -> None:
            partial[i] = passes.centred_dot_sum(g3[start:stop], x3[start:stop], mean)

        _over_ranges(ranges, part)
        g_dot, g_sum = partial.sum(axis=0)  # in range order: the same bits on any thread count
        g_xhat = g_dot * (1 / np.sqrt(var + ct.type(eps)))
        out = np.stack([g_xhat, g_sum]).astype(x.dtype, copy=False)
        return out.reshape(stats.shape)

    def batch_norm_grad_input(g, x, weight, stats, param_grads, *, axes, eps):
        layout = _Layout(x.shape, axes)
        ct = _compute_dtype(x.dtype)
        g3, x3 = layout.view(g, ct), layout.view(x, ct)
        count = ct.type(max(layout.count, 1))
        mean, var = (_per_channel(row, ct) for row in stats)
        g_xhat, g_sum = (_per_channel(row, ct) for row in param_grads)
        inv_std = 1 / np.sqrt(var + ct.type(eps))
        a = _per_channel(weight, ct) * inv_std
        b = -a * inv_std * (g_xhat / count)
        c = -b * mean - a * (g_sum / count)
        out = np.empty_like(x3)
        passes = loops.for_rows(x3.shape[2])
        elementwise(passes, x3, lambda _, start, stop: passes.affine2(
            g3[start:stop], x3[start:stop], a, b, c, out[start:stop]))
        return layout.restore(out, x.dtype)

    return {"batch_norm": batch_norm, "batch_norm_stats": batch_norm_stats,
            "batch_norm_grad_params": batch_norm_grad_params,
            "batch_norm_grad_input": batch_norm_grad_input}
