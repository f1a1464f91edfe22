"""Records and kernel contracts of batch normalisation's fused training ops
(``plugrad.ops.batch_norm``): its statistics and its two gradients. The references are written
directly in float64 from the formulas (nothing shared with the decompositions or kernels).
"""
from __future__ import annotations

import numpy as np

from plugrad.conformance import samples as S
from plugrad.conformance.contract import kernel
from plugrad.conformance.ops.conv import applied, small
from plugrad.conformance.table import Arg, OpRecord, Sample, register

_FLOATS = ("float16", "float32", "float64")
_TOL = {"float16": (3e-2, 5e-2), "float32": (1e-4, 1e-5)}


def _moments(x, axes):
    x64 = x.astype(np.float64)
    mean = x64.mean(axis=axes, keepdims=True)
    return x64, mean, ((x64 - mean) ** 2).mean(axis=axes, keepdims=True)


@kernel("x, `axes` the reduced axes (a tuple); [mean, biased variance] of x over axes stacked "
        "on a new axis 0: shape (2,) + x's shape with the axes kept as 1, x's dtype")
def batch_norm_stats(x, *, axes):
    _, mean, var = _moments(x, axes)
    return np.stack([mean, var]).astype(x.dtype)


@kernel("g and x of one shape, stats as batch_norm_stats(x, axes) returns, `axes`, `eps`; "
        "[sum(g * xhat), sum(g)] over axes with xhat = (x - mean) / sqrt(var + eps), stacked "
        "like stats, x's dtype")
def batch_norm_grad_params(g, x, stats, *, axes, eps):
    g64 = g.astype(np.float64)
    mean, var = stats.astype(np.float64)
    xhat = (x.astype(np.float64) - mean) / np.sqrt(var + eps)
    return np.stack([(g64 * xhat).sum(axis=axes, keepdims=True),
                     g64.sum(axis=axes, keepdims=True)]).astype(x.dtype)


@kernel("g, x, weight (x's shape with the axes kept as 1), stats (batch_norm_stats), "
        "param_grads (batch_norm_grad_params), `axes`, `eps`; batch norm's input gradient "
        "weight / sqrt(var + eps) * (g - (sum(g) + xhat * sum(g * xhat)) / n), x's dtype")
def batch_norm_grad_input(g, x, weight, stats, param_grads, *, axes, eps):
    n = np.prod([x.shape[a] for a in axes])
    mean, var = stats.astype(np.float64)
    g_xhat, g_sum = param_grads.astype(np.float64)
    inv_std = 1 / np.sqrt(var + eps)
    xhat = (x.astype(np.float64) - mean) * inv_std
    out = weight.astype(np.float64) * inv_std * (g.astype(np.float64) - (g_sum + xhat * g_xhat) / n)
    return out.astype(x.dtype)


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
    return batch_norm_stats(x.astype(np.float64), axes=axes).astype(dtype)


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
    OpRecord("batch_norm_stats", applied("batch_norm_stats"), batch_norm_stats, _stats_samples,
             _FLOATS, tol=_TOL),
    OpRecord("batch_norm_grad_params", applied("batch_norm_grad_params"),
             batch_norm_grad_params, _grad_params_samples, _FLOATS, tol=_TOL),
    OpRecord("batch_norm_grad_input", applied("batch_norm_grad_input"), batch_norm_grad_input,
             _grad_input_samples, _FLOATS, tol=_TOL),
)
