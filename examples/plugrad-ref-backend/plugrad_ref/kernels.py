"""The ref backend's kernels: exactly the primitives plugrad requires, in plain NumPy.

Each kernel follows the contract in plugrad's docs/backends.md: raw arrays positionally, the
op's attributes as keywords, inputs already validated and promoted by plugrad, and a new array
of the declared array type as the result. NumPy returns scalars for 0-d results of ufuncs and
full reductions, so results pass through ``np.asarray``.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

__all__ = ["KERNELS"]


def _elementwise(fn: Callable) -> Callable:
    def kernel(*arrays):
        return np.asarray(fn(*arrays))

    kernel.__name__ = fn.__name__
    return kernel


def _round(x):
    # Halves round away from zero (2.5 -> 3.0, -2.5 -> -3.0).
    return np.asarray(np.where(x >= 0, np.floor(x + 0.5), np.ceil(x - 0.5)).astype(x.dtype))


def _where(cond, x, y):
    return np.asarray(np.where(cond, x, y))


def _cast(x, *, dtype):
    return np.asarray(x.astype(dtype))


def _sum(x, *, axis, keepdims):
    return np.asarray(np.sum(x, axis=axis, keepdims=keepdims, dtype=x.dtype))


def _prod(x, *, axis, keepdims):
    return np.asarray(np.prod(x, axis=axis, keepdims=keepdims, dtype=x.dtype))


def _max(x, *, axis, keepdims):
    return np.asarray(np.max(x, axis=axis, keepdims=keepdims))


def _min(x, *, axis, keepdims):
    return np.asarray(np.min(x, axis=axis, keepdims=keepdims))


def _argmax(x, *, axis, keepdims):
    return np.asarray(np.argmax(x, axis=axis, keepdims=keepdims), dtype=np.int32)


def _argmin(x, *, axis, keepdims):
    return np.asarray(np.argmin(x, axis=axis, keepdims=keepdims), dtype=np.int32)


def _reshape(x, *, shape):
    return x.reshape(shape)


def _broadcast_to(x, *, shape):
    return np.broadcast_to(x, shape)


def _transpose(x, *, perm):
    return x.transpose(perm)


def _getitem(x, *, index):
    return np.asarray(x[index])


def _setitem(x, value, *, index):
    out = np.array(x, copy=True)
    out[index] = value
    return out


def _index_add(x, value, *, index):
    out = np.array(x, copy=True)
    np.add.at(out, index, value)
    return out


def _pad(x, *, pad_width, value):
    return np.pad(x, pad_width, mode="constant", constant_values=value)


def _concat(*xs, axis):
    return np.concatenate(xs, axis=axis)


def _along_axis(index, axis):
    """Index arrays that pick ``index`` along ``axis`` and every position elsewhere."""
    grid = list(np.indices(index.shape, sparse=True))
    grid[axis] = index.astype(np.intp)
    return tuple(grid)


def _gather(x, index, *, axis):
    return np.asarray(x[_along_axis(index, axis)])


def _scatter_add(x, index, value, *, axis):
    out = np.array(x, copy=True)
    np.add.at(out, _along_axis(index, axis), value)
    return out


def _argsort(x, *, axis, descending):
    # Stable: equal values keep their order in x, in both directions.
    if not descending:
        return np.argsort(x, axis=axis, kind="stable").astype(np.int32)
    order = np.flip(np.argsort(np.flip(x, axis=axis), axis=axis, kind="stable"), axis=axis)
    return (x.shape[axis] - 1 - order).astype(np.int32)


def _matmul(x, y):
    return np.asarray(np.matmul(x, y))


def _copy(x):
    return np.array(x, copy=True)


def _full(*, shape, value, dtype):
    return np.full(shape, value, dtype=dtype)


def _arange(*, start, stop, step, dtype):
    return np.arange(start, stop, step, dtype=dtype)


def _uniform(*, shape, dtype, seed):
    # Multiples of 2**-bits, bits = the dtype's significand: exact, and never rounded up to 1.
    bits = np.finfo(dtype).nmant + 1
    draws = np.random.Generator(np.random.PCG64(seed)).random(shape)
    return np.asarray(np.floor(draws * 2.0 ** bits) / 2.0 ** bits, dtype=dtype)


def _normal(*, shape, dtype, seed):
    draws = np.random.Generator(np.random.PCG64(seed)).standard_normal(shape)
    return np.asarray(draws, dtype=dtype)


_UFUNCS = {
    "neg": np.negative, "abs": np.absolute, "sign": np.sign, "exp": np.exp, "log": np.log,
    "log1p": np.log1p, "sqrt": np.sqrt, "sin": np.sin, "cos": np.cos, "tanh": np.tanh,
    "floor": np.floor, "ceil": np.ceil, "logical_not": np.logical_not,
    "add": np.add, "sub": np.subtract, "mul": np.multiply, "div": np.divide,
    "floor_div": np.floor_divide, "mod": np.mod, "pow": np.power,
    "maximum": np.maximum, "minimum": np.minimum,
    "eq": np.equal, "ne": np.not_equal, "lt": np.less, "le": np.less_equal,
    "gt": np.greater, "ge": np.greater_equal,
    "logical_and": np.logical_and, "logical_or": np.logical_or, "logical_xor": np.logical_xor,
}

#: op name -> kernel. Only primitives: composite ops run through their decompositions.
KERNELS: dict[str, Callable] = {name: _elementwise(fn) for name, fn in _UFUNCS.items()}
KERNELS.update({
    "round": _round, "where": _where, "cast": _cast,
    "sum": _sum, "prod": _prod, "max": _max, "min": _min, "argmax": _argmax, "argmin": _argmin,
    "argsort": _argsort,
    "reshape": _reshape, "broadcast_to": _broadcast_to, "transpose": _transpose,
    "getitem": _getitem, "setitem": _setitem, "index_add": _index_add, "pad": _pad,
    "concat": _concat, "gather": _gather, "scatter_add": _scatter_add, "matmul": _matmul,
    "copy": _copy, "full": _full, "arange": _arange, "uniform": _uniform, "normal": _normal,
})
