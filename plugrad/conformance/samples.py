"""Sample-input generators shared by the record modules: values, shapes and layouts.

Every generator returns host arrays already in the test dtype, so the reference sees exactly the
values the backend sees. The standard sets cover the cases the suite promises for every op:
0-d, empty, plain, broadcast pairs and non-contiguous (transposed and strided) inputs.
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from plugrad.conformance.table import Arg, Sample

__all__ = [
    "values", "positive", "away_from_zero", "distinct", "nonzero_divisors", "bools",
    "unary_samples", "binary_samples", "reduction_samples", "Domain",
]

Domain = Callable[[np.random.Generator, tuple, np.dtype], np.ndarray]


def values(rng: np.random.Generator, shape: tuple, dtype: np.dtype, low: float = -2.0,
           high: float = 2.0) -> np.ndarray:
    """Uniform values in ``[low, high)``: reals for floats, small integers for ints."""
    dtype = np.dtype(dtype)
    if dtype == np.bool_:
        return rng.random(shape) < 0.5
    if dtype.kind in "iu":
        lo = max(int(np.floor(low)), 0) if dtype.kind == "u" else int(np.floor(low))
        hi = max(int(np.ceil(high)), lo + 1)
        return rng.integers(lo, hi, size=shape).astype(dtype)
    return rng.uniform(low, high, size=shape).astype(dtype)


def positive(rng: np.random.Generator, shape: tuple, dtype: np.dtype) -> np.ndarray:
    """Values in ``[0.25, 3)``: the domain of log and sqrt, away from their poles."""
    if np.dtype(dtype).kind in "iu":
        return values(rng, shape, dtype, 1, 4)
    return values(rng, shape, dtype, 0.25, 3.0)


def away_from_zero(rng: np.random.Generator, shape: tuple, dtype: np.dtype) -> np.ndarray:
    """Values with ``|x| >= 0.25``, so kinks at zero (abs, relu) stay out of finite differences."""
    dtype = np.dtype(dtype)
    sign = np.where(rng.random(shape) < 0.5, -1.0, 1.0)
    if dtype.kind == "u":
        sign = np.ones(shape)
    magnitude = rng.integers(1, 4, size=shape) if dtype.kind in "iu" \
        else rng.uniform(0.25, 2.0, size=shape)
    return (sign * magnitude).astype(dtype)


def distinct(rng: np.random.Generator, shape: tuple, dtype: np.dtype) -> np.ndarray:
    """Distinct values (no ties), so max/min/argmax pick one element and have one gradient."""
    dtype = np.dtype(dtype)
    size = int(np.prod(shape, dtype=np.int64))
    base = rng.permutation(size).astype(np.float64)
    if dtype.kind == "f":
        base = base * 0.5 - size * 0.25 + rng.uniform(0.0, 0.2, size=size) * (dtype.itemsize > 2)
    elif dtype.kind == "i":
        base = base - size // 2
    return base.reshape(shape).astype(dtype)


def nonzero_divisors(rng: np.random.Generator, shape: tuple, dtype: np.dtype) -> np.ndarray:
    """Divisors with ``|y| >= 0.5`` (``>= 1`` for integers)."""
    dtype = np.dtype(dtype)
    sign = np.ones(shape) if dtype.kind == "u" else np.where(rng.random(shape) < 0.5, -1.0, 1.0)
    magnitude = rng.integers(1, 5, size=shape) if dtype.kind in "iu" \
        else rng.uniform(0.5, 2.0, size=shape)
    return (sign * magnitude).astype(dtype)


def bools(rng: np.random.Generator, shape: tuple, dtype: np.dtype) -> np.ndarray:
    return rng.random(shape) < 0.5


def unary_samples(domain: Domain = values, *, grad: bool = True
                  ) -> Callable[[np.random.Generator, np.dtype], list[Sample]]:
    """0-d, empty, vector, matrix, transposed and strided inputs drawn from ``domain``."""

    def generate(rng: np.random.Generator, dtype: np.dtype) -> list[Sample]:
        def one(shape: tuple, layout: str = "c") -> tuple[Arg]:
            return (Arg(domain(rng, shape, dtype), layout),)

        return [
            Sample("0d", one(()), grad=grad),
            Sample("empty", one((0, 3)), grad=grad),
            Sample("vector", one((5,)), grad=grad),
            Sample("matrix", one((2, 3)), grad=grad),
            Sample("transposed", one((3, 4), "t"), grad=grad),
            Sample("strided", one((2, 5), "s"), grad=grad),
        ]

    return generate


#: (label, shape of x, shape of y, layout of x, layout of y)
BINARY_CASES: Sequence[tuple[str, tuple, tuple, str, str]] = (
    ("0d", (), (), "c", "c"),
    ("same", (2, 3), (2, 3), "c", "c"),
    ("scalar-rhs", (2, 3), (), "c", "c"),
    ("scalar-lhs", (), (4,), "c", "c"),
    ("broadcast", (2, 1), (1, 3), "c", "c"),
    ("broadcast-rank", (3,), (2, 3), "c", "c"),
    ("empty", (0, 3), (3,), "c", "c"),
    ("transposed", (3, 4), (3, 4), "t", "t"),
    ("strided", (2, 5), (2, 5), "s", "c"),
)


def binary_samples(x_domain: Domain = values, y_domain: Domain | None = None, *,
                   grad: bool = True, y_dtype: str | None = None
                   ) -> Callable[[np.random.Generator, np.dtype], list[Sample]]:
    """The standard binary cases: same shape, scalar either side, broadcast, empty, strided."""
    y_domain = y_domain or x_domain

    def generate(rng: np.random.Generator, dtype: np.dtype) -> list[Sample]:
        other = np.dtype(y_dtype) if y_dtype else dtype
        return [Sample(label, (Arg(x_domain(rng, xs, dtype), xl),
                               Arg(y_domain(rng, ys, other), yl)), grad=grad)
                for label, xs, ys, xl, yl in BINARY_CASES]

    return generate


#: (label, input shape, axis, keepdims, layout)
REDUCTION_CASES: Sequence[tuple[str, tuple, object, bool, str]] = (
    ("0d", (), None, False, "c"),
    ("all", (2, 3), None, False, "c"),
    ("all-keepdims", (2, 3), None, True, "c"),
    ("axis0", (3, 4), 0, False, "c"),
    ("axis-1-keepdims", (2, 3, 4), -1, True, "c"),
    ("axes02", (2, 3, 4), (0, 2), False, "c"),
    ("empty-axis", (2, 0), 0, False, "c"),
    ("transposed", (3, 4), 1, False, "t"),
    ("strided", (2, 6), 1, True, "s"),
)


def reduction_samples(domain: Domain = values, *, empty: bool = True, grad: bool = True
                      ) -> Callable[[np.random.Generator, np.dtype], list[Sample]]:
    """Reductions over all axes, one axis, several axes, with keepdims, empty and strided."""

    def generate(rng: np.random.Generator, dtype: np.dtype) -> list[Sample]:
        made = []
        for label, shape, axis, keepdims, layout in REDUCTION_CASES:
            if not empty and 0 in shape:
                continue
            made.append(Sample(label, (Arg(domain(rng, shape, dtype), layout),),
                               {"axis": axis, "keepdims": keepdims}, grad=grad))
        return made

    return generate
