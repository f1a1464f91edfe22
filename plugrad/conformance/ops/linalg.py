"""Records of matmul: matrices, vectors, batches with broadcast batch axes, empty operands."""
from __future__ import annotations

import numpy as np

from plugrad import functional as F
from plugrad.conformance import samples as S
from plugrad.conformance.table import FLOATS, Arg, OpRecord, Sample, register

_CASES = (
    # label, shape of x, shape of y, layout of x, layout of y
    ("matrix", (2, 3), (3, 4), "c", "c"),
    ("vector-matrix", (3,), (3, 2), "c", "c"),
    ("matrix-vector", (2, 3), (3,), "c", "c"),
    ("vector-vector", (4,), (4,), "c", "c"),
    ("batched", (2, 2, 3), (3, 4), "c", "c"),
    ("broadcast-batch", (2, 1, 2, 3), (3, 3, 2), "c", "c"),
    ("empty-rows", (0, 3), (3, 2), "c", "c"),
    ("empty-inner", (2, 0), (0, 3), "c", "c"),
    ("transposed", (2, 3), (3, 4), "t", "t"),
    ("strided", (2, 3), (3, 3), "s", "s"),
)


def _samples(rng: np.random.Generator, dtype: np.dtype) -> list[Sample]:
    return [Sample(label, (Arg(S.values(rng, xs, dtype), xl), Arg(S.values(rng, ys, dtype), yl)))
            for label, xs, ys, xl, yl in _CASES]


register(OpRecord("matmul", F.matmul, None, _samples, FLOATS + ("int32",),
                  tol={"float16": (2e-2, 2e-2)}))
