"""Batch normalisation's training-time helpers as fused ops: its statistics and its backward.

``batch_norm`` (plugrad.ops.nn) is the forward. Written with primitives, its backward and the
running-statistics update are dozens of small kernels per layer, each a pass over the
activation; these three composites let a backend do each in one kernel:

* ``batch_norm_stats(x)``: ``[mean, var]`` of x over ``axes`` (the biased variance), stacked on
  a new leading axis, shape ``(2,) + weight shape``. The running statistics are updated from it.
* ``batch_norm_grad_params(g, x, stats)``: ``[sum(g * xhat), sum(g)]`` over ``axes``, the
  gradients of weight and bias (``xhat = (x - mean) / sqrt(var + eps)``).
* ``batch_norm_grad_input(g, x, weight, stats, param_grads)``: the input's gradient,
  ``weight / sqrt(var + eps) * (g - (sum(g) + xhat * sum(g * xhat)) / n)``, which needs exactly
  the two sums above: they are computed once.

Each decomposes into primitives, so a backend without these kernels still trains; they have no
vjp of their own (the recorded graph uses the decompositions, so batch norm stays twice
differentiable).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from plugrad.core.dispatch import apply, as_tensor_like
from plugrad.core.registry import Spec, composite
from plugrad.core.tensor import Tensor
from plugrad.functional._utils import reduced_count
from plugrad.ops._rules import FIXES, need_kind, need_same_dtype, reduce_shape

__all__: list[str] = []


def _stacked(first: Tensor, second: Tensor) -> Tensor:
    shape = (1,) + tuple(first.shape)
    return apply("concat", apply("reshape", first, shape=shape),
                 apply("reshape", second, shape=shape), axis=0)


def _row(stacked: Tensor, index: int) -> Tensor:
    return apply("getitem", stacked, index=(index,))


def _mean(x: Tensor, axes) -> Tensor:
    scale = as_tensor_like(1.0 / reduced_count(x.shape, axes), x)
    return apply("mul", apply("sum", x, axis=axes, keepdims=True), scale)


def _batch_norm_stats(x, *, axes):
    mean = _mean(x, axes)
    centered = apply("sub", x, mean)
    return _stacked(mean, _mean(apply("mul", centered, centered), axes))


def _normalised(x, stats, eps):
    """(x - mean) / sqrt(var + eps) and 1 / sqrt(var + eps)."""
    inv_std = apply("div", as_tensor_like(1.0, x),
                    apply("sqrt", apply("add", _row(stats, 1), as_tensor_like(eps, x))))
    return apply("mul", apply("sub", x, _row(stats, 0)), inv_std), inv_std


def _batch_norm_grad_params(g, x, stats, *, axes, eps):
    xhat, _ = _normalised(x, stats, eps)
    return _stacked(apply("sum", apply("mul", g, xhat), axis=axes, keepdims=True),
                    apply("sum", g, axis=axes, keepdims=True))


def _batch_norm_grad_input(g, x, weight, stats, param_grads, *, axes, eps):
    xhat, inv_std = _normalised(x, stats, eps)
    scale = as_tensor_like(1.0 / reduced_count(x.shape, axes), x)
    mean_g = apply("mul", _row(param_grads, 1), scale)
    mean_gxhat = apply("mul", _row(param_grads, 0), scale)
    inner = apply("sub", apply("sub", g, mean_g), apply("mul", xhat, mean_gxhat))
    return apply("mul", apply("mul", weight, inv_std), inner)


# -- shape and dtype rules --------------------------------------------------------------------
def _kept(op: str, x: Any, axes: tuple[int, ...]) -> tuple[int, ...]:
    """x's shape with ``axes`` kept as 1 (the statistics' and parameters' shape)."""
    need_kind(op, "input", x, "f", FIXES["f"])
    return reduce_shape(op, tuple(x.shape), axes, True)


def _need_shape(op: str, name: str, a: Any, shape: tuple[int, ...]) -> None:
    if tuple(a.shape) != shape:
        raise ValueError(f"{op}: {name} of shape {tuple(a.shape)}; expected {shape}")


def _batch_norm_stats_rule(x: Any, *, axes: tuple[int, ...]) -> Spec:
    return Spec((2,) + _kept("batch_norm_stats", x, axes), x.dtype)


def _grad_params_rule(g: Any, x: Any, stats: Any, *, axes: tuple[int, ...],
                      eps: float) -> Spec:
    op = "batch_norm_grad_params"
    kept = _kept(op, x, axes)
    need_same_dtype(op, ("x", x), ("g", g), ("stats", stats))
    _need_shape(op, "g", g, tuple(x.shape))
    _need_shape(op, "stats", stats, (2,) + kept)
    return Spec((2,) + kept, x.dtype)


def _grad_input_rule(g: Any, x: Any, weight: Any, stats: Any, param_grads: Any, *,
                     axes: tuple[int, ...], eps: float) -> Spec:
    op = "batch_norm_grad_input"
    kept = _kept(op, x, axes)
    need_same_dtype(op, ("x", x), ("g", g), ("weight", weight), ("stats", stats),
                    ("param_grads", param_grads))
    _need_shape(op, "g", g, tuple(x.shape))
    _need_shape(op, "weight", weight, kept)
    for name, a in (("stats", stats), ("param_grads", param_grads)):
        _need_shape(op, name, a, (2,) + kept)
    return Spec(tuple(x.shape), x.dtype)


# -- float64 references, written from the formulas ---------------------------------------------
def _batch_norm_stats_reference(x, *, axes):
    x64 = np.asarray(x, dtype=np.float64)
    mean = x64.mean(axis=axes, keepdims=True)
    return np.stack([mean, ((x64 - mean) ** 2).mean(axis=axes, keepdims=True)])


def _grad_params_reference(g, x, stats, *, axes, eps):
    g64 = np.asarray(g, dtype=np.float64)
    mean, var = np.asarray(stats, dtype=np.float64)
    xhat = (np.asarray(x, dtype=np.float64) - mean) / np.sqrt(var + eps)
    return np.stack([(g64 * xhat).sum(axis=axes, keepdims=True),
                     g64.sum(axis=axes, keepdims=True)])


def _grad_input_reference(g, x, weight, stats, param_grads, *, axes, eps):
    n = np.prod([np.shape(x)[a] for a in axes])
    mean, var = np.asarray(stats, dtype=np.float64)
    g_xhat, g_sum = np.asarray(param_grads, dtype=np.float64)
    inv_std = 1 / np.sqrt(var + eps)
    xhat = (np.asarray(x, dtype=np.float64) - mean) * inv_std
    return (np.asarray(weight, dtype=np.float64) * inv_std
            * (np.asarray(g, dtype=np.float64) - (g_sum + xhat * g_xhat) / n))


_AXES = "axes: tuple[int, ...]"
composite("batch_norm_stats", f"x, *, {_AXES}", rule=_batch_norm_stats_rule,
          reference=_batch_norm_stats_reference, decomposition=_batch_norm_stats,
          keep_out=False,
          doc="x, `axes` the reduced axes (a tuple); [mean, biased variance] of x over axes "
              "stacked on a new axis 0: shape (2,) + x's shape with the axes kept as 1, x's dtype")
composite("batch_norm_grad_params", f"g, x, stats, *, {_AXES}, eps: float",
          rule=_grad_params_rule, reference=_grad_params_reference,
          decomposition=_batch_norm_grad_params, keep_out=False,
          doc="g and x of one shape, stats as batch_norm_stats(x, axes) returns, `axes`, `eps`; "
              "[sum(g * xhat), sum(g)] over axes with xhat = (x - mean) / sqrt(var + eps), "
              "stacked like stats (batch_norm's weight and bias gradients), x's dtype")
composite("batch_norm_grad_input", f"g, x, weight, stats, param_grads, *, {_AXES}, eps: float",
          rule=_grad_input_rule, reference=_grad_input_reference,
          decomposition=_batch_norm_grad_input, keep_out=False,
          doc="g, x, weight (x's shape with the axes kept as 1), stats (batch_norm_stats), "
              "param_grads (batch_norm_grad_params), `axes`, `eps`; batch_norm's input gradient "
              "weight / sqrt(var + eps) * (g - (sum(g) + xhat * sum(g * xhat)) / n), x's dtype")
