"""Compiled kernels of the numpy backend (``plugrad[numba]``): batch norm, ReLU, max pooling,
the weight gradient of a convolution over one input channel, the softmax cross-entropy, and the
SGD update.

These kernels do little arithmetic per byte they touch, and NumPy runs each as several
whole-array passes with temporaries: batch norm's four kernels take 2-10 passes each, ReLU's
gradient a mask then a product, max pooling two passes per window offset. The loops of
:mod:`numba_loops` make one pass each. On SmallVGG's and LeNet's activations at batch 64, one
thread (benchmarks/bench_compiled_kernels.py), they take 0.2-0.5x NumPy's time for batch norm,
0.2-0.3x for ReLU, 0.45-0.5x for its gradient, 0.2-0.3x for 2x2 max pooling and 0.35-0.55x
for its gradient (1.05x on 4x4 maps, rows too short to vectorise). A first layer's weight
gradient (one input channel, as on MNIST) is long dot products of shifted rows instead of
im2col and a GEMM: LeNet's conv1 0.24 ms against 0.52. A softmax cross-entropy over few
classes is rows too short for NumPy's calls to pay: one loop per row takes its loss or its
gradient in 0.3x NumPy's time on MNIST's 64x10 logits, after checking every label. The SGD
update is five whole-array operations per parameter in NumPy (weight decay, momentum); one loop
per parameter makes LeNet's ten updates take about half the time, with the same bits.

On when numba is installed (``pip install plugrad[numba]``), unless ``PLUGRAD_NUMBA=0``.
``import plugrad`` never imports numba: the first kernel call does (0.2 s). Each loop compiles
for a dtype on its first call (1.5-2 s for all of them in float32) and numba caches the
machine code on disk, so a later process loads them in about 0.3 s. Only float32 and float64
C-contiguous arrays of 4 K elements or more take these loops (ReLU and pooling; batch norm's
and the SGD update's run compiled at any size), and only 2x2 pooling with stride 2; other inputs
keep NumPy's kernels.
"""
from __future__ import annotations

import functools
import importlib
import importlib.util
import os
from types import ModuleType
from typing import Any, Callable

import numpy as np

from plugrad.backends.numpy_backend._threads import bounds, run_parts
from plugrad.backends.numpy_backend.batch_norm import NumpyLoops
from plugrad.backends.numpy_backend.batch_norm import kernels as batch_norm_kernels
from plugrad.backends.numpy_backend.parallel import batch_parts, into_slices

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
#: The weight gradient runs as :func:`numba_loops.conv_grad_weight_rows` up to this many input
#: channels, from :data:`MIN_ROW_LENGTH` (output rows times the padded input's width) on.
#: Measured at batch 64, one thread: LeNet's conv1 (1 channel, 672) 0.18 ms against 0.51 for
#: NumPy's im2col; LeNet's conv2 (6 channels, 96) 0.55 against 0.33.
MAX_ROWS_CHANNELS = 1
MIN_ROW_LENGTH = 256
#: Ranges of the batch the weight gradient sums separately, whatever the thread count: the
#: same bits on one thread or two.
GRAD_WEIGHT_PARTS = 2
#: Classes up to which a softmax cross-entropy runs compiled. The loop's ``exp`` is scalar and
#: NumPy's vectorised, which wins from about 48 classes on; at batch 64 and 10 classes (MNIST)
#: the loops take 3.6 us against 11 (forward) and 4.2 against 14 (gradient), 32 classes 7.8
#: against 12 and 8.1 against 16.
MAX_CLASSES = 32
_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))
_LABELS = (np.dtype(np.int32), np.dtype(np.int64))


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

    The split thresholds: SmallVGG's step measured the same with its 1 M-element layers split
    or not; the split keeps, its sums being the same on any thread count.
    """

    split_elements = 1 << 20
    split_reduction = 1 << 20

    @classmethod
    def for_rows(cls, length: int) -> type[NumpyLoops]:
        """Rows of one value (``(N, C)`` features) keep NumPy's passes, already single column
        reductions there: the loops would run a row per value (2.7x slower on 256x512)."""
        return NumpyLoops if length == 1 else cls

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


def _updates_in_place(param: np.ndarray, grad: np.ndarray, *state: np.ndarray) -> bool:
    """Whether an update loop takes these arrays: one float32 or float64 dtype and one shape,
    C-contiguous, ``param`` and ``state`` (which it writes) writable. Any size: one loop call
    costs less than the NumPy kernel's five ufunc calls on a bias of six values too."""
    dtype, shape = param.dtype, param.shape
    if dtype not in _FLOATS or grad.dtype != dtype or grad.shape != shape \
            or not grad.flags.c_contiguous:
        return False
    for array in (param, *state):
        flags = array.flags
        if array.dtype != dtype or array.shape != shape \
                or not (flags.c_contiguous and flags.writeable):
            return False
    return True


def _split(loop: Callable, inputs: tuple[np.ndarray, ...], shape: tuple) -> np.ndarray:
    """``loop(*inputs, out)`` into a new array of ``shape``, in one range of axis 0 per thread
    when the inputs are large (``parallel.py``'s batch split)."""
    first = inputs[0]
    parts = batch_parts(shape[0], first.size, MIN_SPLIT_ELEMENTS, first.dtype)
    if parts == 1:  # no hand-over machinery for the common small call: ~1.4 us of a 3 us ReLU
        out = np.empty(shape, dtype=first.dtype)
        loop(*inputs, out)
        return out
    return into_slices(np, lambda *sliced, out: loop(*sliced, out), parts, shape, first.dtype,
                       inputs)


def _elementwise(loop: Callable, *arrays: np.ndarray) -> np.ndarray:
    """``loop`` over the flattened arrays into a new one shaped as the last."""
    flat = tuple(a.reshape(-1) for a in arrays)
    return _split(loop, flat, flat[-1].shape).reshape(arrays[-1].shape)


def _two_by_two(kernel_size: tuple, stride: tuple, padding: tuple) -> bool:
    """Whether a pooling is the usual 2x2 with stride 2 and no padding (the compiled one)."""
    return tuple(kernel_size) == (2, 2) and tuple(stride) == (2, 2) and tuple(padding) == (0, 0)


def _grad_weight_by_rows(g: np.ndarray, x: np.ndarray, weight_shape: tuple, padding: tuple,
                         stride: tuple, dilation: tuple, groups: int) -> bool:
    """Whether a weight gradient runs as dot products of rows: stride 1, few input channels."""
    length = g.shape[2] * (x.shape[3] + 2 * padding[1])
    return (groups == 1 and tuple(stride) == (1, 1) and tuple(dilation) == (1, 1)
            and weight_shape[1] <= MAX_ROWS_CHANNELS and length >= MIN_ROW_LENGTH
            and _compiles(g, x))


def _conv_grad_weight_rows(g: np.ndarray, x: np.ndarray, weight_shape: tuple,
                           padding: tuple) -> np.ndarray:
    """The weight gradient of a stride-1 convolution from :func:`numba_loops.
    conv_grad_weight_rows`, the batch in :data:`GRAD_WEIGHT_PARTS` ranges summed in order."""
    n, c, h, w = x.shape
    o, _, kh, kw = weight_shape
    ph, pw = padding
    oh, ow = g.shape[2], g.shape[3]
    hp, wp = h + 2 * ph, w + 2 * pw
    # the last tap's last read ends at hp * wp + kw - 2: one row's tail of zeros past the input
    x_flat = np.zeros((n, c, hp * wp + kw - 1), dtype=x.dtype)
    x_flat[:, :, :hp * wp].reshape(n, c, hp, wp)[:, :, ph:ph + h, pw:pw + w] = x
    g_rows = np.zeros((n, o, oh, wp), dtype=g.dtype)
    g_rows[..., :ow] = g
    g_rows = g_rows.reshape(n, o, oh * wp)
    offsets = np.array([i * wp + j for i in range(kh) for j in range(kw)], dtype=np.int64)
    ranges = [slice(start, stop) for start, stop in bounds(n, min(GRAD_WEIGHT_PARTS, n))]
    sums = np.zeros((len(ranges), o, c, kh * kw))
    run_parts(lambda i: loops().conv_grad_weight_rows(
        g_rows[ranges[i]], x_flat[ranges[i]], offsets, sums[i]), len(ranges))
    return sums.sum(axis=0).reshape(weight_shape).astype(x.dtype)


def _class_rows(x: np.ndarray, label: np.ndarray, axis: int) -> bool:
    """Whether a softmax cross-entropy runs as the loops over rows: ``(N, C)`` float scores
    with the classes on axis 1, up to :data:`MAX_CLASSES` of them, and ``(N,)`` C-contiguous
    int32 or int64 labels (the loops do not check bounds: other shapes go to NumPy's kernel,
    which refuses them)."""
    return (axis == 1 and x.ndim == 2 and x.shape[1] <= MAX_CLASSES and x.dtype in _FLOATS
            and x.flags.c_contiguous and label.shape == x.shape[:1]
            and label.dtype in _LABELS and label.flags.c_contiguous)


def _label_checked(bad_row: int, label: np.ndarray, classes: int, op: str) -> None:
    if bad_row >= 0:
        raise IndexError(f"{op}: label {label[bad_row]} (row {bad_row}) is out of range; "
                         f"expected class indices in [0, {classes})")


def kernels(table: dict[str, Callable]) -> dict[str, Callable]:
    """The compiled kernels, each falling back to ``table``'s for inputs it does not take.

    They split their own work over the threads, so they go over ``parallel.split_kernels``'.
    """
    numpy_relu, numpy_relu_grad = table["relu"], table["relu_grad"]
    numpy_max_pool2d, numpy_max_pool2d_grad = table["max_pool2d"], table["max_pool2d_grad"]
    other_grad_weight = table["conv2d_grad_weight"]
    numpy_cross_entropy = table["softmax_cross_entropy"]
    numpy_cross_entropy_grad = table["softmax_cross_entropy_grad"]
    numpy_sgd_update = table["sgd_update"]

    def conv2d_grad_weight(g, x, *, weight_shape, stride, padding, dilation, groups):
        if _grad_weight_by_rows(g, x, weight_shape, padding, stride, dilation, groups):
            return _conv_grad_weight_rows(g, x, weight_shape, padding)
        return other_grad_weight(g, x, weight_shape=weight_shape, stride=stride,
                                 padding=padding, dilation=dilation, groups=groups)

    def relu(x):
        return _elementwise(loops().relu, x) if _compiles(x) else numpy_relu(x)

    def relu_grad(g, y):
        if g.shape == y.shape and _compiles(g, y):  # the loop does not check bounds
            return _elementwise(loops().relu_grad, g, y)
        return numpy_relu_grad(g, y)

    def max_pool2d(x, *, kernel_size, stride, padding):
        if not (_compiles(x) and _two_by_two(kernel_size, stride, padding)):
            return numpy_max_pool2d(x, kernel_size=kernel_size, stride=stride, padding=padding)
        return _split(loops().max_pool_2x2, (x,), x.shape[:2] + (x.shape[2] // 2, x.shape[3] // 2))

    def max_pool2d_grad(g, x, y, *, kernel_size, stride, padding):
        pooled = x.shape[:2] + (x.shape[2] // 2, x.shape[3] // 2) if x.ndim == 4 else None
        if not (g.shape == y.shape == pooled and _compiles(g, x, y)
                and _two_by_two(kernel_size, stride, padding)):
            return numpy_max_pool2d_grad(g, x, y, kernel_size=kernel_size, stride=stride,
                                         padding=padding)
        return _split(loops().max_pool_2x2_grad, (g, x, y), x.shape)

    def softmax_cross_entropy(x, label, *, axis):
        if not _class_rows(x, label, axis):
            return numpy_cross_entropy(x, label, axis=axis)
        out = np.empty(x.shape[0], dtype=x.dtype)
        _label_checked(loops().softmax_cross_entropy_rows(x, label, out), label, x.shape[1],
                       "softmax_cross_entropy")
        return out

    def softmax_cross_entropy_grad(g, x, label, *, axis):
        # g may be strided: a mean's gradient reaches here as one value broadcast to (N,)
        if not (_class_rows(x, label, axis) and g.dtype == x.dtype
                and g.shape == label.shape):
            return numpy_cross_entropy_grad(g, x, label, axis=axis)
        out = np.empty(x.shape, dtype=x.dtype)
        _label_checked(loops().softmax_cross_entropy_grad_rows(g, x, label, out), label,
                       x.shape[1], "softmax_cross_entropy_grad")
        return out

    def sgd_update(param, grad, *buffer, lr, momentum, nesterov, weight_decay):
        if not _updates_in_place(param, grad, *buffer):
            return numpy_sgd_update(param, grad, *buffer, lr=lr, momentum=momentum,
                                    nesterov=nesterov, weight_decay=weight_decay)
        if buffer:
            loops().sgd_momentum_step(param.reshape(-1), grad.reshape(-1),
                                      buffer[0].reshape(-1), lr, momentum, nesterov,
                                      weight_decay)
        else:
            loops().sgd_step(param.reshape(-1), grad.reshape(-1), lr, weight_decay)
        return (param, *buffer)

    table = batch_norm_kernels(CompiledLoops)
    table.update({"relu": relu, "relu_grad": relu_grad, "max_pool2d": max_pool2d,
                  "max_pool2d_grad": max_pool2d_grad, "conv2d_grad_weight": conv2d_grad_weight,
                  "softmax_cross_entropy": softmax_cross_entropy,
                  "softmax_cross_entropy_grad": softmax_cross_entropy_grad,
                  "sgd_update": sgd_update})
    return table
