"""Records of the composite activations and the softmax family (fused kernels are optional)."""
from __future__ import annotations

import numpy as np

from plugrad import functional as F
from plugrad.conformance import samples as S
from plugrad.conformance.table import FLOATS, Arg, OpRecord, Sample, register


def _wide(rng: np.random.Generator, shape: tuple, dtype: np.dtype) -> np.ndarray:
    return S.values(rng, shape, dtype, -4.0, 4.0)


_SOFTMAX_CASES = (
    # label, shape, axis, layout
    ("vector", (5,), 0, "c"),
    ("rows", (2, 3), 1, "c"),
    ("columns", (3, 2), 0, "c"),
    ("rank3", (2, 3, 4), -1, "c"),
    ("empty-batch", (0, 3), 1, "c"),
    ("large", (2, 3), 1, "c"),
    ("transposed", (3, 4), 1, "t"),
    ("strided", (2, 5), 1, "s"),
)


def _softmax_samples(rng: np.random.Generator, dtype: np.dtype) -> list[Sample]:
    made = []
    for label, shape, axis, layout in _SOFTMAX_CASES:
        x = _wide(rng, shape, dtype)
        if label == "large":  # a naive exp overflows here; a shifted softmax does not
            x = (x + 100).astype(dtype) if dtype.itemsize > 2 else x
        made.append(Sample(label, (Arg(x, layout),), {"axis": axis}))
    return made


register(
    OpRecord("relu", F.relu, None, S.unary_samples(S.away_from_zero), FLOATS),
    OpRecord("sigmoid", F.sigmoid, None, S.unary_samples(_wide), FLOATS),
    OpRecord("logsumexp", F.logsumexp, None,
             S.reduction_samples(_wide, empty=False), FLOATS),
    OpRecord("softmax", F.softmax, None, _softmax_samples, FLOATS),
    OpRecord("logsoftmax", F.logsoftmax, None, _softmax_samples, FLOATS),
)
