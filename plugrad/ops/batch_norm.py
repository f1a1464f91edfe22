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

from plugrad.core.dispatch import apply, as_tensor_like
from plugrad.core.registry import composite
from plugrad.core.tensor import Tensor
from plugrad.functional._utils import reduced_count

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


composite("batch_norm_stats", decomposition=_batch_norm_stats, keep_out=False,
          doc="[mean, biased variance] of x over axes, stacked: (2,) + the weight's shape")
composite("batch_norm_grad_params", decomposition=_batch_norm_grad_params, keep_out=False,
          doc="[sum(g * xhat), sum(g)] over axes (batch_norm's weight and bias gradients), "
              "stacked; stats from batch_norm_stats")
composite("batch_norm_grad_input", decomposition=_batch_norm_grad_input, keep_out=False,
          doc="batch_norm's input gradient in training mode, from its statistics and its "
              "parameter gradients (batch_norm_grad_params)")
