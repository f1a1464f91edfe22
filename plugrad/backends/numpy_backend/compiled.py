"""Compiled kernels of the numpy backend: batch norm, ReLU and max pooling (``plugrad[numba]``).

These kernels do little arithmetic per byte they touch, and NumPy runs each as several
whole-array passes with temporaries: batch norm's four kernels take 2-10 passes each, ReLU's
gradient a mask then a product, max pooling two passes per window offset. The loops of
:mod:`numba_loops` make one pass each. On SmallVGG's and LeNet's activations at batch 64, one
thread (benchmarks/bench_compiled_kernels.py), they take 0.2-0.5x NumPy's time for batch norm,
0.2-0.3x for ReLU, 0.45-0.5x for its gradient, 0.2-0.3x for 2x2 max pooling and 0.6-0.8x for
its gradient.

On when numba is installed (``pip install plugrad[numba]``), unless ``PLUGRAD_NUMBA=0``.
``import plugrad`` never imports numba: the first kernel call does (0.2 s). Each loop compiles
for a dtype on its first call (about 2 s for all of them in float32) and numba caches the
machine code on disk, so a later process loads them in about 0.3 s. Only float32 and float64
C-contiguous arrays take these loops, and only 2x2 pooling with stride 2; other inputs keep
NumPy's kernels.
"""
from __future__ import annotations

import functools
import importlib
import importlib.util
import os
from types import ModuleType
from typing import Any, Callable

import numpy as np

from plugrad.backends.numpy_backend.batch_norm import NumpyLoops
from plugrad.backends.numpy_backend.batch_norm import kernels as batch_norm_kernels

__all__ = ["VARIABLE", "CompiledLoops", "available", "kernels", "turned_off"]

VARIABLE = "PLUGRAD_NUMBA"
_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


def turned_off() -> bool:
    """Whether ``PLUGRAD_NUMBA=0`` asks for NumPy's kernels only."""
    return os.environ.get(VARIABLE, "").strip().lower() in ("0", "false", "off", "no")


def available() -> bool:
    """Whether the compiled kernels run: numba installed and not turned off."""
    return not turned_off() and importlib.util.find_spec("numba") is not None


@functools.cache
def loops() -> ModuleType:
    """:mod:`numba_loops`, imported (with numba) on first use."""
    return importlib.import_module("plugrad.backends.numpy_backend.numba_loops")


class CompiledLoops(NumpyLoops):
    """Batch norm's passes over a range of rows as single compiled loops.

    They run a few times faster than NumPy's, so a thread is worth its hand-over later.
    """

    split_elements = 1 << 20
    split_reduction = 1 << 20

    @staticmethod
    def mean_squares(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return loops().bn_mean_squares(x)

    @staticmethod
    def affine(x: np.ndarray, scale: np.ndarray, shift: np.ndarray, out: np.ndarray) -> None:
        loops().bn_affine(x, scale, shift, out)

    @staticmethod
    def centred_dot_sum(g: np.ndarray, x: np.ndarray,
                        mean: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return loops().bn_centred_dot_sum(g, x, mean)

    @staticmethod
    def affine2(g: np.ndarray, x: np.ndarray, a: np.ndarray, b: np.ndarray, c: np.ndarray,
                out: np.ndarray) -> None:
        loops().bn_affine2(g, x, a, b, c, out)


def _compiles(*arrays: Any) -> bool:
    """Whether the loops take these arrays: float32 or float64, one dtype, C-contiguous."""
    dtype = arrays[0].dtype
    return dtype in _FLOATS and all(
        a.dtype == dtype and a.flags.c_contiguous for a in arrays)


def _two_by_two(kernel_size: tuple, stride: tuple, padding: tuple) -> bool:
    """Whether a pooling is the usual 2x2 with stride 2 and no padding (the compiled one)."""
    return tuple(kernel_size) == (2, 2) and tuple(stride) == (2, 2) and tuple(padding) == (0, 0)


def kernels(table: dict[str, Callable]) -> dict[str, Callable]:
    """The compiled kernels, each falling back to ``table``'s for inputs it does not take."""
    numpy_relu, numpy_relu_grad = table["relu"], table["relu_grad"]
    numpy_max_pool2d, numpy_max_pool2d_grad = table["max_pool2d"], table["max_pool2d_grad"]

    def relu(x):
        if not _compiles(x):
            return numpy_relu(x)
        out = np.empty_like(x)
        loops().relu(x.reshape(-1), out.reshape(-1))
        return out

    def relu_grad(g, y):
        if not _compiles(g, y):
            return numpy_relu_grad(g, y)
        out = np.empty_like(y)
        loops().relu_grad(g.reshape(-1), y.reshape(-1), out.reshape(-1))
        return out

    def max_pool2d(x, *, kernel_size, stride, padding, out=None):
        if not (_compiles(x) and _two_by_two(kernel_size, stride, padding)):
            return numpy_max_pool2d(x, kernel_size=kernel_size, stride=stride, padding=padding,
                                    out=out)
        if out is None:
            out = np.empty(x.shape[:2] + (x.shape[2] // 2, x.shape[3] // 2), dtype=x.dtype)
        loops().max_pool_2x2(x, out)
        return out

    def max_pool2d_grad(g, x, y, *, kernel_size, stride, padding, out=None):
        if not (_compiles(g, x, y) and _two_by_two(kernel_size, stride, padding)):
            return numpy_max_pool2d_grad(g, x, y, kernel_size=kernel_size, stride=stride,
                                         padding=padding, out=out)
        if out is None:
            out = np.empty_like(x)
        loops().max_pool_2x2_grad(g, x, y, out)
        return out

    table = batch_norm_kernels(CompiledLoops)
    table.update({"relu": relu, "relu_grad": relu_grad, "max_pool2d": max_pool2d,
                  "max_pool2d_grad": max_pool2d_grad})
    return table
