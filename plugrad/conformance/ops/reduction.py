"""Records of the reductions: sum, mean, prod, max, min, argmax, argmin."""
from __future__ import annotations

import numpy as np

from plugrad import functional as F
from plugrad.conformance import samples as S
from plugrad.conformance.table import FLOATS, NUMERIC, Arg, OpRecord, Sample, register


def _sum_out(sample: Sample, dtype: np.dtype) -> str:
    return "int32" if dtype == np.bool_ else dtype.name


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


def _int32(sample: Sample, dtype: np.dtype) -> str:
    return "int32"


register(
    OpRecord("sum", F.sum, None, S.reduction_samples(), NUMERIC + ("bool",),
             out_dtype=_sum_out),
    OpRecord("mean", F.mean, None, S.reduction_samples(empty=False), FLOATS),
    OpRecord("prod", F.prod, None, _prod_samples, NUMERIC),
    OpRecord("max", F.max, None, S.reduction_samples(S.distinct, empty=False), NUMERIC),
    OpRecord("min", F.min, None, S.reduction_samples(S.distinct, empty=False), NUMERIC),
    OpRecord("argmax", F.argmax, None, _arg_samples, NUMERIC, grad=False,
             out_dtype=_int32),
    OpRecord("argmin", F.argmin, None, _arg_samples, NUMERIC, grad=False,
             out_dtype=_int32),
)
