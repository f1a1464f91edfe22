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
C-contiguous arrays of 4 K elements or more take these loops (ReLU and pooling; batch norm's
always run compiled), and only 2x2 pooling with stride 2; other inputs keep NumPy's kernels.
"""
from __future__ import annotations

import functools
import importlib
import importlib.util
import os
from types import ModuleType
from typing import Any, Callable

import numpy as np

from plugrad.backends.numpy_backend._threads import bounds, num_threads, run_parts
from plugrad.backends.numpy_backend.batch_norm import NumpyLoops
from plugrad.backends.numpy_backend.batch_norm import kernels as batch_norm_kernels

__all__ = ["VARIABLE", "MIN_ELEMENTS", "MIN_SPLIT_ELEMENTS", "CompiledLoops", "available",
           "kernels", "turned_off"]

VARIABLE = "PLUGRAD_NUMBA"
#: Elements (of the input) from which ReLU, its gradient and the pooling split over the threads.
#: Interleaved with unsplit steps: SmallVGG's step at batch 64 took 0.96x as long with its ReLUs
#: (0.5-1 M elements) split and 0.96x with its poolings (0.5-1 M) split; LeNet's with its first
#: pooling (221 K) split, 1.02x.
MIN_SPLIT_ELEMENTS = 1 << 19
#: Elements from which ReLU, its gradient and the pooling run compiled: a call of a compiled
#: loop costs about 1 us more than a NumPy ufunc's, which NumPy's speed repays from about 4 K
#: elements on (ReLU of 1 K elements: NumPy 1.1 us, compiled 1.9; of 16 K: 5.6 and 2.5).
MIN_ELEMENTS = 4096
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
    """Whether the loops take these arrays: float32 or float64, one dtype, C-contiguous, and
    at least :data:`MIN_ELEMENTS` of them."""
    dtype = arrays[0].dtype
    return arrays[0].size >= MIN_ELEMENTS and dtype in _FLOATS and all(
        a.dtype == dtype and a.flags.c_contiguous for a in arrays)


def _split(loop: Callable, inputs: tuple[np.ndarray, ...], out: np.ndarray) -> np.ndarray:
    """``loop(*inputs, out)``, in one range of axis 0 per thread when the inputs are large."""
    parts = min(num_threads() if inputs[0].size >= MIN_SPLIT_ELEMENTS else 1, out.shape[0])
    if parts <= 1:
        loop(*inputs, out)
        return out
    ranges = [slice(start, stop) for start, stop in bounds(out.shape[0], parts)]
    run_parts(lambda i: loop(*(a[ranges[i]] for a in inputs), out[ranges[i]]), parts)
    return out


def _elementwise(loop: Callable, *arrays: np.ndarray) -> np.ndarray:
    """``loop`` over the flattened arrays into a new one shaped as the last."""
    out = np.empty_like(arrays[-1])
    _split(loop, tuple(a.reshape(-1) for a in arrays), out.reshape(-1))
    return out


def _two_by_two(kernel_size: tuple, stride: tuple, padding: tuple) -> bool:
    """Whether a pooling is the usual 2x2 with stride 2 and no padding (the compiled one)."""
    return tuple(kernel_size) == (2, 2) and tuple(stride) == (2, 2) and tuple(padding) == (0, 0)


def kernels(table: dict[str, Callable]) -> dict[str, Callable]:
    """The compiled kernels, each falling back to ``table``'s for inputs it does not take.

    They split their own work over the threads, so they go over ``parallel.split_kernels``'.
    """
    numpy_relu, numpy_relu_grad = table["relu"], table["relu_grad"]
    numpy_max_pool2d, numpy_max_pool2d_grad = table["max_pool2d"], table["max_pool2d_grad"]

    def relu(x):
        return _elementwise(loops().relu, x) if _compiles(x) else numpy_relu(x)

    def relu_grad(g, y):
        return _elementwise(loops().relu_grad, g, y) if _compiles(g, y) else numpy_relu_grad(g, y)

    def max_pool2d(x, *, kernel_size, stride, padding):
        if not (_compiles(x) and _two_by_two(kernel_size, stride, padding)):
            return numpy_max_pool2d(x, kernel_size=kernel_size, stride=stride, padding=padding)
        out = np.empty(x.shape[:2] + (x.shape[2] // 2, x.shape[3] // 2), dtype=x.dtype)
        return _split(loops().max_pool_2x2, (x,), out)

    def max_pool2d_grad(g, x, y, *, kernel_size, stride, padding):
        if not (_compiles(g, x, y) and _two_by_two(kernel_size, stride, padding)):
            return numpy_max_pool2d_grad(g, x, y, kernel_size=kernel_size, stride=stride,
                                         padding=padding)
        return _split(loops().max_pool_2x2_grad, (g, x, y), np.empty_like(x))

    table = batch_norm_kernels(CompiledLoops)
    table.update({"relu": relu, "relu_grad": relu_grad, "max_pool2d": max_pool2d,
                  "max_pool2d_grad": max_pool2d_grad})
    return table
