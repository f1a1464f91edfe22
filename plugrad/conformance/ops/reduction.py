"""Records of the reductions: sum, mean, prod, max, min, argmax, argmin."""
from __future__ import annotations

import numpy as np

from plugrad import functional as F
from plugrad.conformance import samples as S
from plugrad.conformance.contract import kernel
from plugrad.conformance.table import FLOATS, NUMERIC, Arg, OpRecord, Sample, register


def _sum_out(sample: Sample, dtype: np.dtype) -> str:
    return "int32" if dtype == np.bool_ else dtype.name


def _sum_reference(x: np.ndarray, axis, keepdims: bool) -> np.ndarray:
    return np.sum(x, axis=axis, keepdims=keepdims)


@kernel("floating x; axis None (all axes) or a sorted tuple of ints, reducing at least one "
        "element; the sum over axis divided by the number of elements reduced, x's dtype")
def mean(x, *, axis, keepdims):
    return np.mean(x.astype(np.float64), axis=axis, keepdims=keepdims).astype(x.dtype)


def _factors(rng: np.random.Generator, shape: tuple, dtype: np.dtype) -> np.ndarray:
    """Factors whose products stay small: +-[0.5, 1.5) for floats, +-1 (0 or 1 unsigned) else."""
    if dtype.kind == "u":
        return rng.integers(0, 2, size=shape).astype(dtype)
    sign = np.where(rng.random(shape) < 0.5, -1.0, 1.0)
    if dtype.kind == "i":
        return sign.astype(dtype)
    return (sign * rng.uniform(0.5, 1.5, size=shape)).astype(dtype)


def _prod_samples(rng: np.random.Generator, dtype: np.dtype) -> list[Sample]:
    made = S.reduction_samples(_factors)(rng, dtype)
    # Rows with no zero, one zero and two zeros: the three branches of prod's vjp.
    zeros = _factors(rng, (3, 4), dtype)
    zeros[1, 2] = 0
    zeros[2, 0] = zeros[2, 3] = 0
    made.append(Sample("zeros", (Arg(zeros),), {"axis": 1, "keepdims": False}))
    return made


def _prod_reference(x: np.ndarray, axis, keepdims: bool) -> np.ndarray:
    return np.prod(x, axis=axis, keepdims=keepdims)


def _max_reference(x: np.ndarray, axis, keepdims: bool) -> np.ndarray:
    return np.max(x, axis=axis, keepdims=keepdims)


def _min_reference(x: np.ndarray, axis, keepdims: bool) -> np.ndarray:
    return np.min(x, axis=axis, keepdims=keepdims)


_ARG_CASES = (
    # label, shape, axis, keepdims, layout
    ("0d", (), None, False, "c"),
    ("flat", (2, 3), None, False, "c"),
    ("vector", (5,), 0, False, "c"),
    ("axis0", (3, 4), 0, False, "c"),
    ("axis-1-keepdims", (2, 3, 4), -1, True, "c"),
    ("transposed", (3, 4), 1, False, "t"),
    ("strided", (2, 6), 1, False, "s"),
)


def _arg_samples(rng: np.random.Generator, dtype: np.dtype) -> list[Sample]:
    return [Sample(label, (Arg(S.distinct(rng, shape, dtype), layout),),
                   {"axis": axis, "keepdims": keepdims}, grad=False)
            for label, shape, axis, keepdims, layout in _ARG_CASES]


def _argmax_reference(x: np.ndarray, axis, keepdims: bool) -> np.ndarray:
    return np.argmax(x, axis=axis, keepdims=keepdims)


def _argmin_reference(x: np.ndarray, axis, keepdims: bool) -> np.ndarray:
    return np.argmin(x, axis=axis, keepdims=keepdims)


def _int32(sample: Sample, dtype: np.dtype) -> str:
    return "int32"


register(
    OpRecord("sum", F.sum, _sum_reference, S.reduction_samples(), NUMERIC + ("bool",),
             out_dtype=_sum_out),
    OpRecord("mean", F.mean, mean, S.reduction_samples(empty=False), FLOATS),
    OpRecord("prod", F.prod, _prod_reference, _prod_samples, NUMERIC),
    OpRecord("max", F.max, _max_reference, S.reduction_samples(S.distinct, empty=False), NUMERIC),
    OpRecord("min", F.min, _min_reference, S.reduction_samples(S.distinct, empty=False), NUMERIC),
    OpRecord("argmax", F.argmax, _argmax_reference, _arg_samples, NUMERIC, grad=False,
             out_dtype=_int32),
    OpRecord("argmin", F.argmin, _argmin_reference, _arg_samples, NUMERIC, grad=False,
             out_dtype=_int32),
)
