"""The kernel contract: each op's exact kernel signature and what it must return, as NumPy code.

A kernel receives raw arrays positionally and the op's attributes as keywords; plugrad's front
end has already validated and promoted them. The functions here are the executable form of that
contract. The suite runs them on host copies of every kernel call to check the shape and dtype a
backend returns, and ``docs/backends.md`` shows the table :func:`markdown_table` generates (a
test keeps the two in step). Modules that declare new ops add theirs with :func:`kernel`.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

__all__ = ["KernelSpec", "CONTRACT", "kernel", "signature", "markdown_table", "uncontracted_ops"]


@dataclass(frozen=True)
class KernelSpec:
    """One op's kernel: a NumPy reference with the exact signature, and what it returns."""

    name: str
    reference: Callable[..., Any]
    returns: str

    @property
    def signature(self) -> str:
        return f"{self.name}{inspect.signature(self.reference)}"


CONTRACT: dict[str, KernelSpec] = {}


def kernel(returns: str, name: str | None = None) -> Callable[[Callable], Callable]:
    """Declare the contract of one kernel; the decorated function is its NumPy reference."""

    def declare(fn: Callable) -> Callable:
        op = name or fn.__name__.rstrip("_")
        if op in CONTRACT:
            raise ValueError(f"contract: kernel {op!r} is declared twice")
        CONTRACT[op] = KernelSpec(op, fn, returns)
        return fn

    return declare


def signature(op: str) -> str:
    """``op``'s kernel signature, e.g. ``sum(x, *, axis, keepdims)``."""
    from plugrad.conformance import ops as record_modules

    record_modules.load()  # modules of later ops declare their contracts next to their records
    return CONTRACT[op].signature


def uncontracted_ops() -> list[str]:
    """Ops in ``OPS`` with no kernel contract (a new op must declare one)."""
    from plugrad.conformance import ops as record_modules
    from plugrad.core.registry import OPS

    record_modules.load()
    return sorted(set(OPS) - set(CONTRACT))


def markdown_table(primitive: bool) -> str:
    """The table of required primitives (or optional fused ops) shown in docs/backends.md."""
    from plugrad.conformance import ops as record_modules
    from plugrad.core.registry import OPS

    record_modules.load()
    rows = ["| op | kernel signature | returns |", "| --- | --- | --- |"]
    for name in sorted(n for n, op in OPS.items() if op.primitive == primitive):
        spec = CONTRACT.get(name)
        if spec is None:
            rows.append(f"| `{name}` | (no contract declared) | |")
            continue
        rows.append(f"| `{name}` | `{spec.signature}` | {spec.returns} |")
    return "\n".join(rows)


# -- elementwise ------------------------------------------------------------------------------
_UNARY = {
    "neg": (np.negative, "-x"), "abs": (np.abs, "absolute value"), "sign": (np.sign, "-1, 0 or 1"),
    "exp": (np.exp, "e ** x (x floating)"), "log": (np.log, "natural log (x floating)"),
    "log1p": (np.log1p, "log(1 + x) (x floating)"), "sqrt": (np.sqrt, "square root (x floating)"),
    "sin": (np.sin, "sine (x floating)"), "cos": (np.cos, "cosine (x floating)"),
    "tanh": (np.tanh, "hyperbolic tangent (x floating)"),
    "floor": (np.floor, "round down (x floating)"), "ceil": (np.ceil, "round up (x floating)"),
    "logical_not": (np.logical_not, "not x (x bool)"),
}


def _unary(name: str, fn: Callable, what: str) -> None:
    def reference(x):
        return fn(x)

    reference.__name__ = name
    kernel(f"{what}; x's shape and dtype", name)(reference)


for _name, (_fn, _what) in _UNARY.items():
    _unary(_name, _fn, _what)


@kernel("halves away from zero (2.5 -> 3, -2.5 -> -3); x's shape and dtype")
def round_(x):
    return np.copysign(np.floor(np.abs(x) + 0.5), x).astype(x.dtype)


_BINARY = {
    "add": (np.add, "x + y"), "sub": (np.subtract, "x - y"), "mul": (np.multiply, "x * y"),
    "div": (np.true_divide, "x / y (floating)"), "floor_div": (np.floor_divide, "floor(x / y)"),
    "mod": (np.remainder, "x - floor(x / y) * y (the sign of y)"), "pow": (np.power, "x ** y"),
    "maximum": (np.maximum, "the larger of x and y"),
    "minimum": (np.minimum, "the smaller of x and y"),
    "logical_and": (np.logical_and, "x and y (bool)"),
    "logical_or": (np.logical_or, "x or y (bool)"),
    "logical_xor": (np.logical_xor, "x xor y (bool)"),
    "eq": (np.equal, "x == y"), "ne": (np.not_equal, "x != y"), "lt": (np.less, "x < y"),
    "le": (np.less_equal, "x <= y"), "gt": (np.greater, "x > y"),
    "ge": (np.greater_equal, "x >= y"),
}
_COMPARISONS = {"eq", "ne", "lt", "le", "gt", "ge"}


def _binary(name: str, fn: Callable, what: str) -> None:
    def reference(x, y):
        return fn(x, y)

    reference.__name__ = name
    result = "bool" if name in _COMPARISONS else "their dtype"
    kernel(f"{what}; x and y share a dtype; the broadcast shape, {result}", name)(reference)


for _name, (_fn, _what) in _BINARY.items():
    _binary(_name, _fn, _what)


@kernel("cond is bool, x and y share a dtype; the broadcast shape of all three, x's dtype")
def where(cond, x, y):
    return np.where(cond, x, y)


@kernel("x converted to `dtype` (a numpy.dtype); float to int truncates towards zero")
def cast(x, *, dtype):
    return x.astype(dtype)


# -- reductions -------------------------------------------------------------------------------
_REDUCE_RETURNS = "axis is None (all axes) or a sorted tuple of ints; x's dtype (never widened)"


@kernel(_REDUCE_RETURNS)
def sum_(x, *, axis, keepdims):
    return np.sum(x, axis=axis, keepdims=keepdims, dtype=x.dtype)


@kernel(_REDUCE_RETURNS)
def prod(x, *, axis, keepdims):
    return np.prod(x, axis=axis, keepdims=keepdims, dtype=x.dtype)


@kernel(_REDUCE_RETURNS + "; x is never empty")
def max_(x, *, axis, keepdims):
    return np.max(x, axis=axis, keepdims=keepdims)


@kernel(_REDUCE_RETURNS + "; x is never empty")
def min_(x, *, axis, keepdims):
    return np.min(x, axis=axis, keepdims=keepdims)


@kernel("axis is None (the flattened x) or an int; int32 indices of the first maximum")
def argmax(x, *, axis, keepdims):
    return np.argmax(x, axis=axis, keepdims=keepdims).astype(np.int32)


@kernel("axis is None (the flattened x) or an int; int32 indices of the first minimum")
def argmin(x, *, axis, keepdims):
    return np.argmin(x, axis=axis, keepdims=keepdims).astype(np.int32)


# -- shape and indexing -----------------------------------------------------------------------
@kernel("`shape` is a tuple of ints with x's size; x's dtype")
def reshape(x, *, shape):
    return x.reshape(shape)


@kernel("`shape` is a tuple x broadcasts to; x's dtype (may be a read-only view)")
def broadcast_to(x, *, shape):
    return np.broadcast_to(x, shape)


@kernel("`perm` is a permutation tuple; x's dtype (may be a view)")
def transpose(x, *, perm):
    return x.transpose(perm)


@kernel("`index` is a tuple of ints, slices, None, Ellipsis, bools and device arrays "
        "(int or bool), with NumPy's indexing rules; x's dtype")
def getitem(x, *, index):
    return np.asarray(x[index])


@kernel("a new array: x with x[index] = value (value broadcasts to the selection); x is not "
        "modified")
def setitem(x, value, *, index):
    out = np.array(x, copy=True)
    out[index] = value
    return out


@kernel("a new array: x with value added at index, repeated indices accumulating; x is not "
        "modified")
def index_add(x, value, *, index):
    out = np.array(x, copy=True)
    np.add.at(out, index, value)
    return out


@kernel("`pad_width` is a tuple of (before, after) per axis, `value` a Python number; x's dtype")
def pad(x, *, pad_width, value):
    return np.pad(x, pad_width, mode="constant", constant_values=value)


@kernel("two or more arrays of one dtype, equal except along the int `axis`")
def concat(*xs, axis):
    return np.concatenate(xs, axis=axis)


@kernel("index is int32 with x's rank; out[i][j] = x[index[i][j]][j] for axis 0; x's dtype")
def gather(x, index, *, axis):
    return np.take_along_axis(x, index.astype(np.intp), axis=axis)


@kernel("a new array: x plus value scattered at index along axis (gather's adjoint); x's dtype")
def scatter_add(x, index, value, *, axis):
    out = np.array(x, copy=True)
    grid = list(np.indices(index.shape, sparse=True))
    grid[axis] = index.astype(np.intp)
    np.add.at(out, tuple(grid), value)
    return out


@kernel("x and y share a dtype, both 2-D or more with broadcast batch axes; NumPy's matmul")
def matmul(x, y):
    return np.matmul(x, y)


@kernel("a new array equal to x, same dtype (never a view)")
def copy(x):
    return np.array(x, copy=True)


# -- creation ---------------------------------------------------------------------------------
@kernel("`shape` a tuple of ints, `value` a Python number, `dtype` a numpy.dtype")
def full(*, shape, value, dtype):
    return np.full(shape, value, dtype=dtype)


@kernel("NumPy's arange: values in [start, stop) by step, of `dtype`")
def arange(*, start, stop, step, dtype):
    return np.arange(start, stop, step, dtype=dtype)


@kernel("`shape` of `dtype` drawn from U[0, 1), reproducible from the int `seed`")
def uniform(*, shape, dtype, seed):
    return np.zeros(shape, dtype=dtype)


@kernel("`shape` of `dtype` drawn from N(0, 1), reproducible from the int `seed`")
def normal(*, shape, dtype, seed):
    return np.zeros(shape, dtype=dtype)


# -- optional fused kernels of composite ops --------------------------------------------------
@kernel("max(x, 0); x's shape and dtype")
def relu(x):
    return np.maximum(x, np.zeros((), x.dtype))


@kernel("1 / (1 + exp(-x)) without overflow; x's shape and dtype (floating)")
def sigmoid(x):
    with np.errstate(over="ignore"):
        return (1 / (1 + np.exp(-x))).astype(x.dtype)


@kernel("log(sum(exp(x), axis)); axis None or a sorted tuple; x's dtype")
def logsumexp(x, *, axis, keepdims):
    peak = np.max(x, axis=axis, keepdims=True)
    out = np.log(np.sum(np.exp(x - peak), axis=axis, keepdims=True)) + peak
    return (out if keepdims else np.squeeze(out, axis=axis)).astype(x.dtype)


@kernel("exp(x) / sum(exp(x), axis) for the int `axis`; x's shape and dtype")
def softmax(x, *, axis):
    e = np.exp(x - np.max(x, axis=axis, keepdims=True))
    return (e / np.sum(e, axis=axis, keepdims=True)).astype(x.dtype)


@kernel("x - logsumexp(x, axis) for the int `axis`; x's shape and dtype")
def logsoftmax(x, *, axis):
    shifted = x - np.max(x, axis=axis, keepdims=True)
    return (shifted - np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))).astype(x.dtype)
