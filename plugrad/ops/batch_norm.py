"""Batch normalisation in training mode: the forward, its statistics and its backward.

Written with primitives, the forward, its backward and the running-statistics update are dozens
of small kernels per layer, each a pass over the activation; these four composites let a
backend do each in one kernel, and compute the batch statistics once per call:

* ``batch_norm_stats(x)``: ``[mean, var]`` of x over ``axes`` (the biased variance), stacked on
  a new leading axis, shape ``(2,) + weight shape``.
* ``batch_norm(x, weight, bias, stats)``: ``(x - mean) / sqrt(var + eps) * weight + bias``
  with ``stats = batch_norm_stats(x)``. The statistics are an input so that the forward, the
  running-statistics update (``F.batch_norm``) and the backward share one computation; the
  gradient treats them as that function of x, and ``stats`` itself gets none.
* ``batch_norm_grad_params(g, x, stats)``: ``[sum(g * xhat), sum(g)]`` over ``axes``, the
  gradients of weight and bias (``xhat = (x - mean) / sqrt(var + eps)``).
* ``batch_norm_grad_input(g, x, weight, stats, param_grads)``: the input's gradient,
  ``weight / sqrt(var + eps) * (g - (sum(g) + xhat * sum(g * xhat)) / n)``, which needs exactly
  the two sums above: they are computed once.

Each decomposes into primitives, so a backend without these kernels still trains. The three
helpers have no vjp of their own: where they are recorded (batch norm's decomposition on a
backend without its kernel), gradients flow through their decompositions.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from plugrad.core.dispatch import apply, as_tensor_like
from plugrad.core.registry import Spec, composite
from plugrad.core.tensor import Tensor
from plugrad.functional._utils import reduced_count, sum_to
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


def _batch_norm(x, weight, bias, stats, *, axes, eps):
    if x._node is not None:
        # Recorded through this decomposition (the backend has no batch_norm kernel): the
        # gradient must see the statistics as the function of x they are, so they are computed
        # again on the tape instead of read from the constant ``stats``.
        stats = apply("batch_norm_stats", x, axes=axes)
    xhat, _ = _normalised(x, stats, eps)
    return apply("add", apply("mul", xhat, weight), bias)


def _batch_norm_vjp(ctx, g):
    # The forward's statistics, then the two parameter gradients as one reduction, then the
    # input's gradient from both (last: see linear's vjp). ``stats`` gets no gradient: the
    # input's gradient already holds their dependence on x.
    x, weight, bias, stats = ctx.inputs
    attrs = ctx.attrs
    param_grads = apply("batch_norm_grad_params", g, x, stats, **attrs)
    gw = sum_to(_row(param_grads, 0), weight.shape) if ctx.needs[1] else None
    gb = sum_to(_row(param_grads, 1), bias.shape) if ctx.needs[2] else None
    gx = apply("batch_norm_grad_input", g, x, weight, stats, param_grads, **attrs) \
        if ctx.needs[0] else None
    return gx, gw, gb, None


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


def _batch_norm_rule(x: Any, weight: Any, bias: Any, stats: Any, *, axes: tuple[int, ...],
                     eps: float) -> Spec:
    op = "batch_norm"
    kept = _kept(op, x, axes)
    shape = tuple(x.shape)
    if len(shape) < 2:
        raise ValueError(f"{op}: expected an input of at least 2 dimensions (N, C, ...); got "
                         f"shape {shape}")
    need_same_dtype(op, ("the input", x), ("weight", weight), ("bias", bias), ("stats", stats))
    for name, param in (("weight", weight), ("bias", bias)):
        if tuple(param.shape) != kept:
            raise ValueError(f"{op}: {name} of shape {tuple(param.shape)}; expected {kept}, one "
                             f"value per channel")
    _need_shape(op, "stats", stats, (2,) + kept)
    if reduced_count(shape, axes) < 2:
        raise ValueError(f"{op}: training needs more than one value per channel to compute a "
                         f"variance; got input shape {shape}")
    return Spec(shape, x.dtype)


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


#: How far given statistics may be from the float64 ones of x (relative to the mean's
#: magnitude plus the deviation, and to the variance): float16 statistics round by 5e-4.
_STATS_AGREEMENT = 2e-3


def _batch_norm_reference(x, weight, bias, stats, *, axes, eps):
    # From x itself, not from the given stats: the reference then owes nothing to the code that
    # computed them, and its finite differences in x are the op's true gradient. The stats
    # must still be x's, or the call was not one this op defines.
    x64 = np.asarray(x, dtype=np.float64)
    mean, var = _batch_norm_stats_reference(x64, axes=axes)
    given_mean, given_var = np.asarray(stats, dtype=np.float64)
    std = np.sqrt(var + eps)
    off = (np.abs(given_mean - mean) > _STATS_AGREEMENT * (np.abs(mean) + std)) \
        | (np.abs(given_var - var) > _STATS_AGREEMENT * (var + eps))
    if np.any(off):
        at = tuple(int(i) for i in np.unravel_index(int(np.argmax(off)), off.shape))
        raise ValueError(f"batch_norm: stats are not batch_norm_stats(x, axes); got mean "
                         f"{given_mean[at]:.6g}, variance {given_var[at]:.6g} at {at}; expected "
                         f"x's {mean[at]:.6g}, {var[at]:.6g}; compute them from this x with the "
                         f"batch_norm_stats op")
    return (x64 - mean) / std * weight + bias


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
composite("batch_norm", f"x, weight, bias, stats, *, {_AXES}, eps: float",
          rule=_batch_norm_rule, reference=_batch_norm_reference, decomposition=_batch_norm,
          vjp=_batch_norm_vjp, keep_inputs=(0, 1, 3), keep_out=False,
          doc="x (N, C, ...), weight and bias (1, C, 1, ...), stats = batch_norm_stats(x, axes), "
              "`axes` the reduced axes (a tuple), `eps` a float; (x - mean) / sqrt(var + eps) "
              "* weight + bias with the batch's statistics, x's dtype")
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
