"""The primitive kernel table, written once over an array module ``xp`` (numpy or cupy).

Kernels take raw arrays positionally and op attributes as keywords; inputs arrive validated and
promoted by plugrad's core, so a kernel only computes. Reductions keep integer dtypes (NumPy would
widen int32 sums to int64).
"""
from __future__ import annotations

import math
from typing import Any, Callable

from plugrad.backends.numpy_backend import batch_norm, conv, nn, parallel, pool

__all__ = ["kernel_table"]


def kernel_table(xp: Any) -> dict[str, Callable]:
    """Every primitive and the fused composite kernels (activations, nn, conv, pooling)."""
    table: dict[str, Callable] = {}
    table.update(_elementwise(xp))
    table.update(_reductions(xp))
    table.update(_shape_and_index(xp))
    table.update(_creation(xp))
    table.update(_activations(xp))
    table.update(_sorting(xp))
    table.update(nn.kernels(xp))
    table.update(conv.kernels(xp))
    table.update(pool.kernels(xp))
    if getattr(xp, "__name__", "") == "numpy":  # CPU: big batches split over threads
        table.update(batch_norm.kernels())
        table.update(parallel.split_kernels(table, xp))
    if getattr(xp, "__name__", "") == "numpy":
        for name in _MAY_RETURN_SCALARS.intersection(table):
            table[name] = _array_result(table[name], xp)
    return table


# NumPy ufuncs, full reductions and integer indexing return NumPy scalars for 0-d results. The
# kernel contract is arrays: setitem, index_add and in-place updates cannot write to a scalar.
_MAY_RETURN_SCALARS = {
    "neg", "abs", "sign", "exp", "log", "log1p", "sqrt", "sin", "cos", "tanh", "floor", "ceil",
    "round", "logical_not", "add", "sub", "mul", "div", "floor_div", "mod", "pow", "maximum",
    "minimum", "eq", "ne", "lt", "le", "gt", "ge", "logical_and", "logical_or", "logical_xor",
    "sum", "mean", "prod", "max", "min", "argmax", "argmin", "getitem", "relu", "sigmoid",
    "logsumexp", "relu_grad", "leaky_relu", "gelu", "binary_cross_entropy",
    "softmax_cross_entropy",
}


def _array_result(kernel: Callable, xp: Any) -> Callable:
    ndarray, asarray = xp.ndarray, xp.asarray

    def run(*args, **kwargs):
        out = kernel(*args, **kwargs)
        return out if out.__class__ is ndarray else asarray(out)

    run.__name__ = getattr(kernel, "__name__", "kernel")
    return run


def _elementwise(xp: Any) -> dict[str, Callable]:
    def round_half_away(x):
        return xp.copysign(xp.floor(xp.abs(x) + 0.5), x) if x.dtype.kind == "f" else x.copy()

    def where(cond, x, y):
        return xp.where(cond, x, y)

    def cast(x, *, dtype):
        return x.astype(dtype)

    return {
        "neg": xp.negative, "abs": xp.abs, "sign": xp.sign, "exp": xp.exp, "log": xp.log,
        "log1p": xp.log1p, "sqrt": xp.sqrt, "sin": xp.sin, "cos": xp.cos, "tanh": xp.tanh,
        "floor": xp.floor, "ceil": xp.ceil, "round": round_half_away,
        "logical_not": xp.logical_not,
        "add": xp.add, "sub": xp.subtract, "mul": xp.multiply, "div": xp.true_divide,
        "floor_div": xp.floor_divide, "mod": xp.remainder, "pow": xp.power,
        "maximum": xp.maximum, "minimum": xp.minimum,
        "eq": xp.equal, "ne": xp.not_equal, "lt": xp.less, "le": xp.less_equal,
        "gt": xp.greater, "ge": xp.greater_equal,
        "logical_and": xp.logical_and, "logical_or": xp.logical_or,
        "logical_xor": xp.logical_xor,
        "where": where, "cast": cast,
    }


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

    def max_(x, *, axis, keepdims):
        return xp.max(x, axis=axis, keepdims=keepdims)

    def min_(x, *, axis, keepdims):
        return xp.min(x, axis=axis, keepdims=keepdims)

    def argmax(x, *, axis, keepdims):
        return xp.argmax(x, axis=axis, keepdims=keepdims).astype(xp.int32)

    def argmin(x, *, axis, keepdims):
        return xp.argmin(x, axis=axis, keepdims=keepdims).astype(xp.int32)

    return {"sum": sum_, "mean": mean, "prod": prod, "max": max_, "min": min_,
            "argmax": argmax, "argmin": argmin}


def _shape_and_index(xp: Any) -> dict[str, Callable]:
    def reshape(x, *, shape):
        return x.reshape(shape)

    def broadcast_to(x, *, shape):
        return xp.broadcast_to(x, shape)

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

    def concat(*xs, axis):
        return xp.concatenate(xs, axis=axis)

    def gather(x, index, *, axis):
        return xp.take_along_axis(x, index, axis=axis)

    def scatter_add(x, index, value, *, axis):
        out = x.copy()
        grid = list(xp.indices(index.shape, sparse=True))
        grid[axis] = index
        xp.add.at(out, tuple(grid), value)
        return out

    def copy(x):
        return x.copy()

    return {"reshape": reshape, "broadcast_to": broadcast_to, "transpose": transpose,
            "getitem": getitem, "setitem": setitem, "index_add": index_add, "pad": pad,
            "concat": concat, "gather": gather, "scatter_add": scatter_add,
            "matmul": xp.matmul, "copy": copy}


def _sorting(xp: Any) -> dict[str, Callable]:
    def argsort(x, *, axis, descending):
        if not descending:
            return xp.argsort(x, axis=axis, stable=True).astype(xp.int32)
        # The reversed ascending order of the reversed input: descending, and equal values
        # still keep their order in x (negating x would break unsigned and bool inputs).
        order = xp.flip(xp.argsort(xp.flip(x, axis=axis), axis=axis, stable=True), axis=axis)
        return (x.shape[axis] - 1 - order).astype(xp.int32)

    return {"argsort": argsort}


def _creation(xp: Any) -> dict[str, Callable]:
    def full(*, shape, value, dtype):
        return xp.full(shape, value, dtype=dtype)

    def arange(*, start, stop, step, dtype):
        return xp.arange(start, stop, step, dtype=dtype)

    def uniform(*, shape, dtype, seed):
        rng = xp.random.default_rng(seed)
        if dtype.name in ("float32", "float64"):
            return rng.random(shape, dtype=dtype)
        # A float32 draw near 1 rounds up to 1.0 in float16; multiples of 2**-11 stay in [0, 1).
        out = rng.integers(0, 2048, size=shape).astype(dtype)
        out *= 2.0 ** -11
        return out

    def normal(*, shape, dtype, seed):
        draw_dtype = dtype if dtype.name in ("float32", "float64") else "float32"
        rng = xp.random.default_rng(seed)
        return rng.standard_normal(shape, dtype=draw_dtype).astype(dtype, copy=False)

    return {"full": full, "arange": arange, "uniform": uniform, "normal": normal}


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
