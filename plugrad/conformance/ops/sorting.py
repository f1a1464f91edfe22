"""Records of ``argsort``, reached through sort, argsort and topk.

Tie order is part of the contract: equal values keep their order in the input, ascending and
descending, so every sample with integer or rounded values has ties, and the op's reference
sorts with NumPy's stable sort of a float64 key (a different route from the kernels' flip).
"""
from __future__ import annotations

import numpy as np

from plugrad import functional as F
from plugrad.conformance import samples as S
from plugrad.conformance.table import (
    ALL_DTYPES,
    FLOATS,
    NUMERIC,
    Arg,
    OpRecord,
    Sample,
    declared_reference,
    register,
)


def _tied(rng: np.random.Generator, shape: tuple, dtype: np.dtype) -> np.ndarray:
    """Values on a coarse grid, so most rows hold ties."""
    if dtype.kind == "f":
        return (np.round(rng.uniform(-2, 2, size=shape) * 2) / 2).astype(dtype)
    return S.values(rng, shape, dtype)


#: (label, shape, layout, descending)
_CASES = (
    ("vector", (7,), "c", False),
    ("vector-descending", (7,), "c", True),
    ("rows", (3, 5), "c", False),
    ("rows-descending", (3, 5), "c", True),
    ("batched", (2, 3, 4), "c", True),
    ("empty-rows", (0, 4), "c", False),
    ("empty-axis", (3, 0), "c", True),
    ("transposed", (4, 3), "t", False),
    ("strided", (2, 6), "s", True),
)


def _samples(domain, grad: bool):
    def generate(rng: np.random.Generator, dtype: np.dtype) -> list[Sample]:
        return [Sample(label, (Arg(domain(rng, shape, dtype), layout),),
                       {"descending": descending}, grad=grad)
                for label, shape, layout, descending in _CASES]

    return generate


def _argsort_reference(x: np.ndarray, descending: bool) -> np.ndarray:
    return declared_reference("argsort")(x, axis=x.ndim - 1, descending=descending)


def _sort_values(x, descending):
    return F.sort(x, descending)[0]


def _sort_indices(x, descending):
    return F.sort(x, descending)[1]


def _sort_reference(x: np.ndarray, descending: bool) -> np.ndarray:
    order = _argsort_reference(x, descending).astype(np.intp)
    return np.take_along_axis(x, order, axis=-1)


#: (label, shape, k, descending, kth_only, layout)
_TOPK_CASES = (
    ("vector", (6,), 3, False, False, "c"),
    ("vector-largest", (6,), 2, True, False, "c"),
    ("rows", (3, 5), 4, False, False, "c"),
    ("rows-largest-all", (3, 5), 5, True, False, "c"),
    ("kth", (3, 5), 2, False, True, "c"),
    ("kth-largest", (4,), 1, True, True, "c"),
    ("empty-rows", (0, 5), 2, True, False, "c"),
    ("transposed", (5, 3), 2, True, False, "t"),
    ("strided", (2, 6), 3, False, False, "s"),
)


def _topk_samples(domain, grad: bool):
    def generate(rng: np.random.Generator, dtype: np.dtype) -> list[Sample]:
        return [Sample(label, (Arg(domain(rng, shape, dtype), layout),),
                       {"k": k, "descending": descending, "kth_only": kth_only}, grad=grad)
                for label, shape, k, descending, kth_only, layout in _TOPK_CASES]

    return generate


def _topk_values(x, k, descending, kth_only):
    return F.topk(x, k, descending=descending, kth_only=kth_only)[0]


def _topk_indices(x, k, descending, kth_only):
    return F.topk(x, k, descending=descending, kth_only=kth_only)[1]


def _topk_reference(x: np.ndarray, k: int, descending: bool, kth_only: bool) -> np.ndarray:
    values = _sort_reference(x, descending)[..., :k]
    return values[..., k - 1] if kth_only else values


def _topk_index_reference(x: np.ndarray, k: int, descending: bool,
                          kth_only: bool) -> np.ndarray:
    if kth_only:  # where the k-th value first occurs in its row
        kth = _topk_reference(x, k, descending, kth_only)[..., None]
        return np.argmax(x == kth, axis=-1).astype(np.int32)
    return _argsort_reference(x, descending)[..., :k]


def _int32(sample: Sample, dtype: np.dtype) -> str:
    return "int32"


register(
    OpRecord("argsort", F.argsort, _argsort_reference, _samples(_tied, False), ALL_DTYPES,
             grad=False, out_dtype=_int32),
    OpRecord("argsort", _sort_indices, _argsort_reference, _samples(_tied, False), NUMERIC,
             name="sort_indices", grad=False, out_dtype=_int32),
    # Distinct values for the gradient: at a tie the sorted values have no derivative.
    OpRecord("argsort", _sort_values, _sort_reference, _samples(S.distinct, True), NUMERIC,
             name="sort"),
    OpRecord("argsort", _sort_values, _sort_reference, _samples(_tied, False), FLOATS,
             name="sort_ties", grad=False),
    OpRecord("argsort", _topk_values, _topk_reference, _topk_samples(S.distinct, True),
             NUMERIC, name="topk"),
    OpRecord("argsort", _topk_indices, _topk_index_reference, _topk_samples(_tied, False),
             NUMERIC, name="topk_indices", grad=False, out_dtype=_int32),
)
