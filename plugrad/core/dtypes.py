"""Dtype normalisation and promotion: MegEngine's rules, written once for every backend.

plugrad keeps dtypes as NumPy dtypes internally. Data given without a dtype follows MegEngine:
float64 becomes float32 and int64 becomes int32 (Python ints are int32, floats float32). An
explicit ``dtype="float64"`` is honoured where the backend declares it, so gradient checks can
run in double precision.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np

__all__ = [
    "DTypeLike",
    "as_dtype",
    "cast_host",
    "default_dtype_for",
    "promote",
    "result_dtype",
    "is_float",
    "is_integer",
    "float32",
    "int32",
    "bool_",
]

DTypeLike = Any

float16 = np.dtype("float16")
float32 = np.dtype("float32")
float64 = np.dtype("float64")
int8 = np.dtype("int8")
uint8 = np.dtype("uint8")
int16 = np.dtype("int16")
int32 = np.dtype("int32")
int64 = np.dtype("int64")
bool_ = np.dtype("bool")

# What data without an explicit dtype is stored as.
_DEFAULT_NARROWING = {
    float64: float32,
    int64: int32,
    np.dtype("uint64"): int32,
    np.dtype("uint32"): int32,
    np.dtype("uint16"): int32,
}


@lru_cache(maxsize=None)
def _as_dtype_cached(dtype: Any) -> np.dtype:
    return np.dtype(dtype)


def as_dtype(dtype: DTypeLike) -> np.dtype:
    """Turn ``"float32"``, ``np.float32`` or a dtype into a ``np.dtype``."""
    if isinstance(dtype, np.dtype):
        return dtype
    try:
        return _as_dtype_cached(dtype)
    except TypeError:
        raise TypeError(f"dtype: {dtype!r} is not a dtype; expected a name such as 'float32'") from None


def default_dtype_for(dtype: np.dtype) -> np.dtype:
    """The dtype plugrad stores data of ``dtype`` as when the caller names none."""
    return _DEFAULT_NARROWING.get(dtype, dtype)


def is_float(dtype: np.dtype) -> bool:
    return dtype.kind == "f"


def is_integer(dtype: np.dtype) -> bool:
    return dtype.kind in "iu"


@lru_cache(maxsize=None)
def promote(a: np.dtype, b: np.dtype) -> np.dtype:
    """Promote two tensor dtypes: ints meet floats at the float, never widening past 32 bits.

    NumPy would turn int32 + float16 into float64 and int32 + uint32 into int64; plugrad keeps
    MegEngine's narrower results.
    """
    if a == b:
        return a
    a_float, b_float = a.kind == "f", b.kind == "f"
    if a_float and not b_float:
        return a
    if b_float and not a_float:
        return b
    out = np.promote_types(a, b)
    if out == float64 and not (a == float64 or b == float64):
        return float32
    if out.kind in "iu" and out.itemsize > 4:
        return int32
    return out


def result_dtype(tensor_dtype: np.dtype, scalar: Any) -> np.dtype:
    """The dtype of ``tensor <op> scalar``: Python scalars are weakly typed."""
    if isinstance(scalar, (bool, np.bool_)):
        return tensor_dtype
    if isinstance(scalar, (int, np.integer)):
        return int32 if tensor_dtype == bool_ else tensor_dtype
    if isinstance(scalar, (float, np.floating)):
        return tensor_dtype if tensor_dtype.kind == "f" else float32
    raise TypeError(f"cannot combine a tensor with {type(scalar).__name__} {scalar!r}")


def cast_host(op: str, host: np.ndarray, target: np.dtype) -> np.ndarray:
    """``host`` as ``target``, refusing values ``target`` cannot hold.

    NumPy wraps 2**40 to 0 in int32, turns 1e300 into inf in float32 and nan into an arbitrary
    int: silent wrong numbers. This is the one conversion every host value takes on its way
    into a tensor; it checks only when the cast can lose range (never for same-kind widening).
    """
    source = host.dtype
    if source == target:
        return host
    if host.size and target.kind in "iu" and source.kind in "iuf" \
            and not np.can_cast(source, target, "safe"):
        info = np.iinfo(target)
        low, high = host.min(), host.max()
        if not (info.min <= low and high <= info.max):  # also False for nan
            raise ValueError(f"{op}: values from {low} to {high} do not fit in {target} "
                             f"(range {info.min} to {info.max}); bring the values into range "
                             f"or pass a dtype that holds them")
    if source.kind == "f" and target.kind == "f" and target.itemsize < source.itemsize:
        with np.errstate(over="raise"):
            try:
                return host.astype(target)
            except FloatingPointError:
                peak = np.abs(host[np.isfinite(host)]).max()
                raise ValueError(f"{op}: a value of magnitude {peak} overflows {target} (largest "
                                 f"{np.finfo(target).max}); pass dtype='float64' or scale the "
                                 f"data") from None
    return host.astype(target)
