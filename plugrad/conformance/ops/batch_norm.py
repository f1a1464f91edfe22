"""Records of batch normalisation's fused training ops (``plugrad.ops.batch_norm``): the forward
called directly (any reduction layout; ``F.batch_norm``'s record is in ``nn.py``), its
statistics and its two gradients, checked against the ops' declared float64 references.

``stats`` inputs are the real statistics of the sample's x (the float64 reference's, in the
test dtype), as the ops require; the forward's reference refuses any others.
"""
from __future__ import annotations

import numpy as np

from plugrad.conformance import samples as S
from plugrad.conformance.ops.conv import applied, small
from plugrad.conformance.table import Arg, OpRecord, Sample, declared_reference, register

_FLOATS = ("float16", "float32", "float64")
_TOL = {"float16": (3e-2, 5e-2), "float32": (1e-4, 1e-5)}


#: (label, shape, axes, layout): channels first (images, features, sequences), the reduction
#: over other axes, a transposed and a strided input (the statistics also get a mean of 40
#: against a spread of 0.3).
_CASES = (
    ("images", (4, 3, 5, 5), (0, 2, 3), "c"),
    ("features", (6, 4), (0,), "c"),
    ("sequence", (3, 2, 4), (0, 2), "c"),
    ("other-axes", (3, 4, 2, 5), (0, 1, 3), "c"),
    ("transposed", (3, 4, 2, 2), (0, 2, 3), "t"),
    ("strided", (4, 2, 3), (0, 2), "s"),
)


def _kept(shape, axes):
    return tuple(1 if i in axes else size for i, size in enumerate(shape))


def _stats_samples(rng: np.random.Generator, dtype: np.dtype) -> list[Sample]:
    made = [Sample(label, (Arg(S.values(rng, shape, dtype), layout),), {"axes": axes})
            for label, shape, axes, layout in _CASES]
    offset = S.values(rng, (8, 3, 4, 4), dtype, 40.0, 41.0)  # mean 40, spread 0.3
    made.append(Sample("large-mean", (Arg(offset),), {"axes": (0, 2, 3)}))
    return made


def _stats_of(x, axes, dtype):
    return declared_reference("batch_norm_stats")(x, axes=axes).astype(dtype)


def _batch_norm_samples(rng: np.random.Generator, dtype: np.dtype) -> list[Sample]:
    made = []
    for label, shape, axes, layout in _CASES:
        x = S.values(rng, shape, dtype)
        kept = _kept(shape, axes)
        made.append(Sample(label, (
            Arg(x, layout), Arg(S.values(rng, kept, dtype, 0.5, 1.5)), Arg(small(rng, kept, dtype)),
            Arg(_stats_of(x, axes, dtype), grad=False)), {"axes": axes, "eps": 1e-5}))
    return made


def _grad_params_samples(rng: np.random.Generator, dtype: np.dtype) -> list[Sample]:
    made = []
    for label, shape, axes, layout in _CASES:
        x = S.values(rng, shape, dtype)
        made.append(Sample(label, (Arg(small(rng, shape, dtype), layout), Arg(x, layout),
                                   Arg(_stats_of(x, axes, dtype), grad=False)),
                           {"axes": axes, "eps": 1e-5}))
    return made


def _grad_input_samples(rng: np.random.Generator, dtype: np.dtype) -> list[Sample]:
    made = []
    for label, shape, axes, layout in _CASES:
        x = S.values(rng, shape, dtype)
        kept = _kept(shape, axes)
        made.append(Sample(label, (
            Arg(small(rng, shape, dtype), layout), Arg(x, layout),
            Arg(S.values(rng, kept, dtype, 0.5, 1.5)),
            Arg(_stats_of(x, axes, dtype), grad=False),
            Arg(small(rng, (2,) + kept, dtype))), {"axes": axes, "eps": 1e-5}))
    return made


register(
    OpRecord("batch_norm", applied("batch_norm"), None, _batch_norm_samples, _FLOATS,
             name="batch_norm_op", tol=_TOL),
    OpRecord("batch_norm_stats", applied("batch_norm_stats"), None, _stats_samples, _FLOATS,
             tol=_TOL),
    OpRecord("batch_norm_grad_params", applied("batch_norm_grad_params"), None,
             _grad_params_samples, _FLOATS, tol=_TOL),
    OpRecord("batch_norm_grad_input", applied("batch_norm_grad_input"), None,
             _grad_input_samples, _FLOATS, tol=_TOL),
)
