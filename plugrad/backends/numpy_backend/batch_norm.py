"""Batch normalisation in training mode on the CPU: the forward, its statistics and its backward.

Overrides of the array-module kernel ``nn.py``'s ``batch_norm`` and the kernels of the fused ops
of ``plugrad.ops.batch_norm``, fastest in the usual layout: channels on axis 1, statistics over
every other axis. The activation is viewed as ``(N, C, M)`` (``M`` the spatial size), and the
per-channel
reductions are BLAS calls: a sum is ``(N*C, M) @ ones(M)`` then a sum over ``N``, a sum of
products a batched dot. NumPy's own ``sum(axis=(0, 2, 3))`` walks the array with a stride per
axis and measured about 6x slower, ``einsum`` 2x. Every kernel is a few whole-array passes:

* forward, given the statistics: ``x - mean`` into the output, then scale and shift in place:
  three passes, against about ten kernels and passes for the primitives.
* statistics: mean, ``x - mean`` into a temporary, variance.
* parameter gradients: ``sum(g)`` and ``sum(g * (x - mean))``.
* input gradient: ``(x - mean) * b`` and ``(g - mean(g)) * a`` added, with per-channel ``a, b``.

Centred values are always formed before they are squared or multiplied (never
``E[x^2] - mean^2``), so float32 keeps the accuracy of the two-pass formula when ``|mean|`` is
large against the spread. float16 computes in float32. Other ``axes`` are moved to the front
first (a copy), so any reduction works.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

__all__ = ["kernels"]

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
            return np.ascontiguousarray(a, dtype=dtype).reshape(a.shape[0], a.shape[1], -1)
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


def _centred(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(mean, x - mean, biased variance)`` of an ``(N, C, M)`` array, per channel."""
    count = max(x.shape[0] * x.shape[2], 1)
    mean = _channel_sum(x) / x.dtype.type(count)
    centred = x - mean[:, None]
    var = _channel_dot(centred, centred) / x.dtype.type(count)
    return mean, centred, var


def _per_channel(a: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """A ``(1, C, 1, ...)`` parameter or statistic as a ``(C, 1)`` column in ``dtype``."""
    return a.reshape(-1, 1).astype(dtype, copy=False)


def kernels() -> dict[str, Callable]:
    """The batch-norm kernels of the numpy backend."""

    def batch_norm(x, weight, bias, stats, *, axes, eps):
        layout = _Layout(x.shape, axes)
        ct = _compute_dtype(x.dtype)
        mean, var = (_per_channel(row, ct) for row in stats)
        out = layout.view(x, ct) - mean
        out *= _per_channel(weight, ct) / np.sqrt(var + ct.type(eps))
        out += _per_channel(bias, ct)
        return layout.restore(out, x.dtype)

    def batch_norm_stats(x, *, axes):
        ct = _compute_dtype(x.dtype)
        mean, _, var = _centred(_Layout(x.shape, axes).view(x, ct))
        shape = (2,) + tuple(1 if i in axes else size for i, size in enumerate(x.shape))
        return np.stack([mean, var]).astype(x.dtype, copy=False).reshape(shape)

    def batch_norm_grad_params(g, x, stats, *, axes, eps):
        layout = _Layout(x.shape, axes)
        ct = _compute_dtype(x.dtype)
        g3 = layout.view(g, ct)
        mean, var = (_per_channel(row, ct) for row in stats)
        inv_std = 1 / np.sqrt(var[:, 0] + ct.type(eps))
        g_xhat = _channel_dot(g3, layout.view(x, ct) - mean) * inv_std
        out = np.stack([g_xhat, _channel_sum(g3)]).astype(x.dtype, copy=False)
        return out.reshape(stats.shape)

    def batch_norm_grad_input(g, x, weight, stats, param_grads, *, axes, eps):
        layout = _Layout(x.shape, axes)
        ct = _compute_dtype(x.dtype)
        count = ct.type(max(layout.count, 1))
        mean, var = (_per_channel(row, ct) for row in stats)
        g_xhat, g_sum = (_per_channel(row, ct) for row in param_grads)
        inv_std = 1 / np.sqrt(var + ct.type(eps))
        a = _per_channel(weight, ct) * inv_std
        # a * (g - mean(g)) - a * inv_std * mean(g * xhat) * (x - mean), two passes each
        out = layout.view(x, ct) - mean
        out *= -a * inv_std * (g_xhat / count)
        shifted = layout.view(g, ct) - g_sum / count
        shifted *= a
        out += shifted
        return layout.restore(out, x.dtype)

    return {"batch_norm": batch_norm, "batch_norm_stats": batch_norm_stats,
            "batch_norm_grad_params": batch_norm_grad_params,
            "batch_norm_grad_input": batch_norm_grad_input}
