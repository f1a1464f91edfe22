"""Layer and group normalisation (``F.nn.layer_norm``, ``F.nn.group_norm``), MegEngine's forms.

Both standardise slices of the input with their own mean and (population) variance, then scale
and shift per element or per channel; written with mean, sub, mul and sqrt, so their gradients
come from those ops and every backend runs them.
"""
from __future__ import annotations

import math
from typing import Any, Sequence

from plugrad.core.dispatch import apply
from plugrad.core.tensor import Tensor
from plugrad.functional._utils import as_tensor, shape_tuple, to_float
from plugrad.functional.math import mean

__all__ = ["layer_norm", "group_norm"]


def _standardize(x: Tensor, axes: tuple[int, ...], eps: float) -> Tensor:
    """``(x - mean) / sqrt(var + eps)`` over ``axes``, the variance without Bessel's correction."""
    centered = x - mean(x, axes, keepdims=True)
    var = mean(centered * centered, axes, keepdims=True)
    return centered / apply("sqrt", var + eps)


def _affine(op: str, name: str, value: Any, x: Tensor, size: int, shape: tuple[int, ...]
            ) -> Tensor:
    if value is None:
        raise ValueError(f"{op}: affine=True needs {name}; pass {name}= or affine=False")
    value = as_tensor(value, x)
    if value.size != size:
        raise ValueError(f"{op}: {name} of shape {value.shape} must hold {size} values, "
                         f"shaped {shape}")
    if value._dtype != x._dtype:
        value = apply("cast", value, dtype=x._dtype)
    return value if tuple(value.shape) == shape else apply("reshape", value, shape=shape)


def _check_eps(op: str, eps: Any) -> float:
    if isinstance(eps, bool) or not isinstance(eps, (int, float)) or eps < 0:
        raise ValueError(f"{op}: eps must be a non-negative number; got {eps!r}")
    return float(eps)


def layer_norm(inp: Tensor, normalized_shape: int | Sequence[int], affine: bool,
               weight: Tensor | None = None, bias: Tensor | None = None,
               eps: float = 1e-5) -> Tensor:
    """Standardise over the trailing ``normalized_shape`` axes, then ``* weight + bias``.

    Args:
        inp: (..., *normalized_shape).
        normalized_shape: the trailing shape whose elements share one mean and variance.
        affine: apply ``weight`` and ``bias`` (each of ``normalized_shape``); required, as in
            MegEngine.

    Example:
        >>> layer_norm(Tensor([[1.0, 3.0]]), 2, affine=False).numpy().round(3)
        array([[-1.,  1.]], dtype=float32)
    """
    op = "layer_norm"
    x = to_float(as_tensor(inp))
    shape = shape_tuple(op, normalized_shape)
    if not shape or tuple(x.shape[x.ndim - len(shape):]) != shape or len(shape) > x.ndim:
        raise ValueError(f"{op}: normalized_shape {shape} must be a non-empty trailing part of "
                         f"the input's shape {x.shape}")
    eps = _check_eps(op, eps)
    axes = tuple(range(x.ndim - len(shape), x.ndim))
    out = _standardize(x, axes, eps)
    if not affine:
        return out
    size = math.prod(shape)
    return out * _affine(op, "weight", weight, x, size, shape) \
        + _affine(op, "bias", bias, x, size, shape)


def group_norm(inp: Tensor, num_groups: int, affine: bool, weight: Tensor | None = None,
               bias: Tensor | None = None, eps: float = 1e-5) -> Tensor:
    """Standardise each of ``num_groups`` channel groups of every sample, then scale per channel.

    Args:
        inp: (N, C, ...), ``C`` divisible by ``num_groups``.
        affine: apply ``weight`` and ``bias``, each of C values; required, as in MegEngine.

    Example:
        >>> group_norm(Tensor([[[1.0], [3.0]]]), 1, affine=False).numpy().round(3)
        array([[[-1.],
                [ 1.]]], dtype=float32)
    """
    op = "group_norm"
    x = to_float(as_tensor(inp))
    if x.ndim < 2:
        raise ValueError(f"{op}: expected an input of at least 2 dimensions (N, C, ...); got "
                         f"shape {x.shape}")
    if isinstance(num_groups, bool) or not isinstance(num_groups, int) or num_groups < 1:
        raise ValueError(f"{op}: num_groups must be a positive int; got {num_groups!r}")
    n, channels = x.shape[0], x.shape[1]
    if channels % num_groups:
        raise ValueError(f"{op}: {channels} channels (input shape {x.shape}) cannot be split "
                         f"into {num_groups} groups; num_groups must divide C")
    eps = _check_eps(op, eps)
    per_group = channels // num_groups * math.prod(x.shape[2:])
    grouped = apply("reshape", x, shape=(n, num_groups, per_group))
    out = apply("reshape", _standardize(grouped, (2,), eps), shape=tuple(x.shape))
    if not affine:
        return out
    shape = (1, channels) + (1,) * (x.ndim - 2)
    return out * _affine(op, "weight", weight, x, channels, shape) \
        + _affine(op, "bias", bias, x, channels, shape)
