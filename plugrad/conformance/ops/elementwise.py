"""Records of the elementwise primitives: unary math, arithmetic, comparisons, where, cast.

The expected values come from each op's float64 reference in :mod:`plugrad.ops.elementwise`.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from plugrad import functional as F
from plugrad.conformance import samples as S
from plugrad.conformance.table import (
    ALL_DTYPES,
    FLOATS,
    NUMERIC,
    SIGNED_INTS,
    Arg,
    OpRecord,
    Sample,
    register,
)


def _bool_out(sample: Sample, dtype: np.dtype) -> str:
    return "bool"


def _unary(op: str, fn: Callable, dtypes=FLOATS, domain: S.Domain = S.values,
           grad: bool = True, **extra) -> OpRecord:
    return OpRecord(op, fn, None, S.unary_samples(domain, grad=grad), dtypes, grad=grad, **extra)


def _log1p_domain(rng: np.random.Generator, shape: tuple, dtype: np.dtype) -> np.ndarray:
    return S.values(rng, shape, dtype, -0.5, 2.0)


def _rounding_domain(rng: np.random.Generator, shape: tuple, dtype: np.dtype) -> np.ndarray:
    """Exact halves (the tie-breaking rule) mixed with ordinary values."""
    halves = rng.integers(-6, 7, size=shape) / 2.0
    mixed = np.where(rng.random(shape) < 0.5, halves, rng.uniform(-3, 3, size=shape))
    return mixed.astype(dtype)


register(
    _unary("neg", F.neg, FLOATS + SIGNED_INTS),
    _unary("abs", F.abs, FLOATS + SIGNED_INTS, S.away_from_zero),
    _unary("sign", F.sign, FLOATS + SIGNED_INTS, grad=False),
    _unary("exp", F.exp),
    _unary("log", F.log, domain=S.positive),
    _unary("log1p", F.log1p, domain=_log1p_domain),
    _unary("sqrt", F.sqrt, domain=S.positive),
    _unary("sin", F.sin),
    _unary("cos", F.cos),
    _unary("tanh", F.tanh),
    _unary("floor", F.floor, domain=_rounding_domain, grad=False),
    _unary("ceil", F.ceil, domain=_rounding_domain, grad=False),
    _unary("round", F.round, domain=_rounding_domain, grad=False),
    _unary("logical_not", F.logical_not, ("bool",), S.bools, grad=False),
)


# -- binary ---------------------------------------------------------------------------------
def _binary(op: str, fn: Callable, dtypes=NUMERIC, x_domain: S.Domain = S.values,
            y_domain: S.Domain | None = None, grad: bool = True, **extra) -> OpRecord:
    return OpRecord(op, fn, None, S.binary_samples(x_domain, y_domain, grad=grad), dtypes,
                    grad=grad, **extra)


def _minuend(rng: np.random.Generator, shape: tuple, dtype: np.dtype) -> np.ndarray:
    # Unsigned differences stay non-negative: x in [5, 10), y in [0, 5).
    return S.values(rng, shape, dtype, 5, 10) if dtype.kind == "u" else S.values(rng, shape, dtype)


def _subtrahend(rng: np.random.Generator, shape: tuple, dtype: np.dtype) -> np.ndarray:
    return S.values(rng, shape, dtype, 0, 5) if dtype.kind == "u" else S.values(rng, shape, dtype)


def _dividend(rng: np.random.Generator, shape: tuple, dtype: np.dtype) -> np.ndarray:
    """x / y has a fractional part in [0.2, 0.8] for every divisor in ``_divisor``.

    With x = 2 (n + 1/3 + e), |e| < 0.03, and y in {+-0.5, +-1, +-2}, x / y is 4t, 2t or t for
    t = n + 1/3 + e, whose fractional parts stay well inside (0, 1): floor and mod are smooth.
    """
    if dtype.kind in "iu":
        return S.values(rng, shape, dtype, -9, 10)
    t = rng.integers(-3, 3, size=shape) + 1 / 3 + rng.uniform(-0.03, 0.03, size=shape)
    return (2 * t).astype(dtype)


def _divisor(rng: np.random.Generator, shape: tuple, dtype: np.dtype) -> np.ndarray:
    if dtype.kind in "iu":
        return S.nonzero_divisors(rng, shape, dtype)
    return rng.choice([-2.0, -1.0, -0.5, 0.5, 1.0, 2.0], size=shape).astype(dtype)


def _base(rng: np.random.Generator, shape: tuple, dtype: np.dtype) -> np.ndarray:
    if dtype.kind in "iu":
        return S.values(rng, shape, dtype, 0, 4)
    return S.positive(rng, shape, dtype)


def _exponent(rng: np.random.Generator, shape: tuple, dtype: np.dtype) -> np.ndarray:
    return S.values(rng, shape, dtype, 0, 3) if dtype.kind in "iu" else S.values(rng, shape, dtype)


def _small_ints(rng: np.random.Generator, shape: tuple, dtype: np.dtype) -> np.ndarray:
    """Few distinct values, so comparisons see ties as well as both orders."""
    if dtype == np.bool_:
        return S.bools(rng, shape, dtype)
    low = 0 if dtype.kind == "u" else -2
    return rng.integers(low, 3, size=shape).astype(dtype)


def _div_out(sample: Sample, dtype: np.dtype) -> str:
    return dtype.name if dtype.kind == "f" else "float32"


register(
    _binary("add", F.add),
    _binary("sub", F.sub, x_domain=_minuend, y_domain=_subtrahend),
    _binary("mul", F.mul),
    _binary("div", F.div, FLOATS + ("int32",), y_domain=S.nonzero_divisors,
            out_dtype=_div_out),
    _binary("pow", F.pow, FLOATS + ("int32",), _base, _exponent,
            tol={"float16": (2e-2, 2e-2)}),
    _binary("mod", F.mod, NUMERIC, _dividend, _divisor),
    _binary("floor_div", F.floor_div, NUMERIC, _dividend, _divisor, grad=False),
    _binary("maximum", F.maximum),
    _binary("minimum", F.minimum),
    _binary("eq", F.equal, ALL_DTYPES, _small_ints, grad=False, out_dtype=_bool_out),
    _binary("ne", F.not_equal, ALL_DTYPES, _small_ints, grad=False,
            out_dtype=_bool_out),
    _binary("lt", F.less, NUMERIC, _small_ints, grad=False, out_dtype=_bool_out),
    _binary("le", F.less_equal, NUMERIC, _small_ints, grad=False,
            out_dtype=_bool_out),
    _binary("gt", F.greater, NUMERIC, _small_ints, grad=False, out_dtype=_bool_out),
    _binary("ge", F.greater_equal, NUMERIC, _small_ints, grad=False,
            out_dtype=_bool_out),
    _binary("logical_and", F.logical_and, ("bool",), S.bools, grad=False),
    _binary("logical_or", F.logical_or, ("bool",), S.bools, grad=False),
    _binary("logical_xor", F.logical_xor, ("bool",), S.bools, grad=False),
)


# -- where and cast -------------------------------------------------------------------------
_WHERE_CASES = (
    # label, mask shape, x shape, y shape, layout of x
    ("0d", (), (), (), "c"),
    ("same", (2, 3), (2, 3), (2, 3), "c"),
    ("broadcast", (2, 1), (1, 3), (2, 3), "c"),
    ("scalar-branches", (2, 3), (), (), "c"),
    ("empty", (0, 3), (3,), (0, 3), "c"),
    ("transposed", (4, 3), (4, 3), (4, 3), "t"),
    ("strided", (2, 5), (2, 5), (1, 5), "s"),
)


def _where_samples(rng: np.random.Generator, dtype: np.dtype) -> list[Sample]:
    made = []
    for label, mask, xs, ys, layout in _WHERE_CASES:
        made.append(Sample(label, (Arg(S.bools(rng, mask, dtype)),
                                   Arg(S.values(rng, xs, dtype), layout),
                                   Arg(S.values(rng, ys, dtype)))))
    return made


def _cast_values(rng: np.random.Generator, shape: tuple, dtype: np.dtype) -> np.ndarray:
    """Non-negative values below 4 with fractions: representable in every dtype once cast."""
    if dtype == np.bool_:
        return S.bools(rng, shape, dtype)
    if dtype.kind in "iu":
        return rng.integers(0, 4, size=shape).astype(dtype)
    return (rng.integers(0, 16, size=shape) / 4.0).astype(dtype)


_CAST_SHAPES = (((), "c"), ((5,), "c"), ((0, 2), "c"), ((3, 4), "t"))


def _cast_samples(rng: np.random.Generator, dtype: np.dtype) -> list[Sample]:
    made = []
    for i, target in enumerate(ALL_DTYPES):
        shape, layout = _CAST_SHAPES[i % len(_CAST_SHAPES)]
        made.append(Sample(f"to-{target}", (Arg(_cast_values(rng, shape, dtype), layout),),
                           {"dtype": target}, grad=np.dtype(target).kind == "f"))
    return made


register(
    OpRecord("where", F.where, None, _where_samples, ALL_DTYPES),
    OpRecord("cast", F.astype, None, _cast_samples, ALL_DTYPES,
             out_dtype=lambda sample, dtype: sample.kwargs["dtype"]),
)
