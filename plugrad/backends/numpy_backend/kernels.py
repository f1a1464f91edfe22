"""Kernels over NumPy-like modules (NumPy and CuPy) that beat the generic Array API ones.

:mod:`plugrad.backends.generic` supplies every primitive; these replace the ones where NumPy's
own machinery pays: ufunc reductions that keep integer dtypes without a cast, NumPy's indexing
and ``add.at`` scatter (the standard has neither), and fused activations, nn, convolution,
pooling and in-place optimizer updates. Kernels take raw arrays positionally and op attributes
as keywords; inputs arrive validated and promoted by plugrad's core, so a kernel only computes.
"""
from __future__ import annotations

import importlib
import math
from typing import Any, Callable

import numpy as np

from plugrad.backends import generic
from plugrad.backends.numpy_backend import batch_norm, conv, nn, optim, pool

__all__ = ["kernel_table", "overrides", "MAY_RETURN_SCALARS", "array_results"]


def kernel_table(xp: Any) -> dict[str, Callable]:
    """Every kernel for a NumPy-like module (``numpy`` or ``cupy``): the generic Array API
    kernels over array_api_compat's namespace for it, with :func:`overrides` over them."""
    namespace = importlib.import_module(f"array_api_compat.{xp.__name__}")
    table = generic.kernel_table(namespace, np.dtype)
    table.update(overrides(xp))
    if xp.ndarray is not np.ndarray:
        return table
    table.update(batch_norm.kernels())  # NumPy-only passes
    return array_results(table, xp)


def overrides(xp: Any) -> dict[str, Callable]:
    """The NumPy-like kernels that replace generic ones, and the fused composite kernels."""
    table: dict[str, Callable] = {}
    table.update(_elementwise(xp))
    table.update(_reductions(xp))
    table.update(_indexing(xp))
    table.update(_creation(xp))
    table.update(_activations(xp))
    table.update(nn.kernels(xp))
    table.update(conv.kernels(xp))
    table.update(pool.kernels(xp))
    table.update(optim.kernels(xp))
    return table


#: NumPy ufuncs, full reductions and integer indexing return NumPy scalars for 0-d results. The
#: kernel contract is arrays: setitem, index_add and in-place updates cannot write to a scalar.
MAY_RETURN_SCALARS = {
    "neg", "abs", "sign", "exp", "log", "log1p", "sqrt", "sin", "cos", "tanh", "floor", "ceil",
    "round", "logical_not", "add", "sub", "mul", "div", "floor_div", "mod", "pow", "maximum",
    "minimum", "eq", "ne", "lt", "le", "gt", "ge", "logical_and", "logical_or", "logical_xor",
    "sum", "mean", "prod", "max", "min", "argmax", "argmin", "getitem", "relu", "sigmoid",
    "logsumexp", "relu_grad", "leaky_relu", "gelu", "binary_cross_entropy",
    "softmax_cross_entropy", "where",
}


def array_results(table: dict[str, Callable], xp: Any) -> dict[str, Callable]:
    """``table`` with the kernels of :data:`MAY_RETURN_SCALARS` returning 0-d arrays."""
    return {name: _array_result(kernel, xp) if name in MAY_RETURN_SCALARS else kernel
            for name, kernel in table.items()}


def _array_result(kernel: Callable, xp: Any) -> Callable:
    ndarray, asarray = xp.ndarray, xp.asarray

    def run(*args, **kwargs):
        out = kernel(*args, **kwargs)
        return out if out.__class__ is ndarray else asarray(out)

    run.__name__ = getattr(kernel, "__name__", "kernel")
    return run


def _reductions(xp: Any) -> dict[str, Callable]:
    # ufunc.reduce skips the Python layers of xp.sum; NumPy's is the hot path on the CPU.
    add_reduce = getattr(xp.add, "reduce", None)

    def sum_(x, *, axis, keepdims):
        if add_reduce is not None:
            if axis is not None and len(axis) > 1 and 0 in axis and x.flags.c_contiguous:
                # Rows first: adding whole contiguous rows is one vector loop, 2-4x faster
                # than NumPy's single pass over scattered axes (conv bias grads over 0, 2, 3).
                x = add_reduce(x, axis=0, keepdims=True, dtype=x.dtype)
            return add_reduce(x, axis=axis, keepdims=keepdims, dtype=x.dtype)
        return xp.sum(x, axis=axis, keepdims=keepdims, dtype=x.dtype)

    def mean(x, *, axis, keepdims):
        # sum, then times 1 / count in x's dtype: what the decomposition computes, to the bit.
        count = x.size if axis is None else math.prod(x.shape[a] for a in axis)
        return sum_(x, axis=axis, keepdims=keepdims) * x.dtype.type(1.0 / count)

    def prod(x, *, axis, keepdims):
        return xp.prod(x, axis=axis, keepdims=keepdims, dtype=x.dtype)

    table = {"sum": sum_, "mean": mean, "prod": prod}
    if xp is np:  # np.max and np.min call these ufunc reductions, after two Python layers
        table.update(max=_extremum(np.maximum.reduce), min=_extremum(np.minimum.reduce))
    return table


def _extremum(reduce: Callable) -> Callable:
    def kernel(x, *, axis, keepdims):
        return reduce(x, axis=axis, keepdims=keepdims)

    return kernel


def _indexing(xp: Any) -> dict[str, Callable]:
    """NumPy's own indexing and scatter, and the method forms of reshape and transpose (no
    Python layer between the call and the array's C method: a step runs them between large
    kernels, where every Python line costs more)."""

    def reshape(x, *, shape):
        return x.reshape(shape)

    ndarray = xp.ndarray
    strided_view = xp is np  # NumPy's constructor makes a view over any C-contiguous array

    def broadcast_to(x, *, shape):
        """The read-only view ``xp.broadcast_to`` returns, built straight from the strides:
        NumPy's own builds an ``nditer`` first (15 us against 6 for a loss's mean gradient in
        a LeNet step)."""
        lead = len(shape) - x.ndim
        if not strided_view or lead < 0 or not x.flags.c_contiguous:
            return xp.broadcast_to(x, shape)
        strides = [0] * lead
        for size, target, stride in zip(x.shape, shape[lead:], x.strides):
            if size != target and size != 1:
                return xp.broadcast_to(x, shape)  # raises NumPy's error
            strides.append(stride if size == target else 0)
        view = ndarray(shape, x.dtype, x, 0, tuple(strides))
        view.flags.writeable = False
        return view

    def transpose(x, *, perm):
        return x.transpose(perm)

    def getitem(x, *, index):
        return x[index]

    def setitem(x, value, *, index):
        out = x.copy()
        out[index] = value
        return out

    def index_add(x, value, *, index):
        out = x.copy()
        xp.add.at(out, index, value)
        return out

    def pad(x, *, pad_width, value):
        return xp.pad(x, pad_width, mode="constant", constant_values=value)

    def scatter_add(x, index, value, *, axis):
        out = x.copy()
        grid = list(xp.indices(index.shape, sparse=True))
        grid[axis] = index
        xp.add.at(out, tuple(grid), value)
        return out

    return {"reshape": reshape, "broadcast_to": broadcast_to, "transpose": transpose,
            "getitem": getitem, "setitem": setitem, "index_add": index_add, "pad": pad,
            "scatter_add": scatter_add}


def _creation(xp: Any) -> dict[str, Callable]:
    """The module's own ``full``, without array_api_compat's device check around it (a
    step's loss seed is one)."""

    def full(*, shape, value, dtype):
        return xp.full(shape, value, dtype=dtype)

    return {"full": full}


def _elementwise(xp: Any) -> dict[str, Callable]:
    """The array method for cast, and NumPy's own add, abs and matmul: they take bools too,
    without the generic kernels' dtype test."""

    def cast(x, *, dtype):
        return x.astype(dtype)

    return {"cast": cast, "add": xp.add, "abs": xp.abs, "matmul": xp.matmul}


def _activations(xp: Any) -> dict[str, Callable]:
    """Fused forms of composite ops: same results as their decompositions, fewer passes."""

    def relu(x):
        return xp.maximum(x, 0)

    def sigmoid(x):
        # exp(-log(1 + exp(-x))) never overflows, unlike 1 / (1 + exp(-x)).
        return xp.exp(-xp.logaddexp(0, -x)).astype(x.dtype, copy=False)

    def logsumexp(x, *, axis, keepdims):
        peak = xp.max(x, axis=axis, keepdims=True)
        peak = xp.where(xp.isfinite(peak), peak, 0)
        out = xp.log(xp.sum(xp.exp(x - peak), axis=axis, keepdims=True)) + peak
        return out if keepdims else xp.squeeze(out, axis=axis)

    def softmax(x, *, axis):
        e = xp.exp(x - xp.max(x, axis=axis, keepdims=True))
        e /= xp.sum(e, axis=axis, keepdims=True)
        return e

    def logsoftmax(x, *, axis):
        shifted = x - xp.max(x, axis=axis, keepdims=True)
        shifted -= xp.log(xp.sum(xp.exp(shifted), axis=axis, keepdims=True))
        return shifted

    return {"relu": relu, "sigmoid": sigmoid, "logsumexp": logsumexp, "softmax": softmax,
            "logsoftmax": logsoftmax}
