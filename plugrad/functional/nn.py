"""Neural-network functions (``F.nn``): activations, softmax family, normalisation, dropout,
embedding, one-hot, and (re-exported) convolution, pooling and the losses."""
from __future__ import annotations

from typing import Any

import numpy as np

from plugrad.core import dtypes
from plugrad.core.dispatch import apply, as_tensor_like, spec_of
from plugrad.core.registry import OPS
from plugrad.core.tensor import Tensor
from plugrad.functional._utils import (
    as_tensor,
    check_index_range,
    check_shape_without_axis,
    normalize_axis,
    to_float,
)
from plugrad.functional.conv import conv1d, conv2d, conv_transpose2d, linear
from plugrad.functional.elementwise import relu, sigmoid
from plugrad.functional.loss import (
    binary_cross_entropy,
    cross_entropy,
    hinge_loss,
    l1_loss,
    square_loss,
)
from plugrad.functional.math import logsumexp, normalize
from plugrad.functional.normalization import group_norm, layer_norm
from plugrad.functional.pooling import (
    adaptive_avg_pool2d,
    adaptive_max_pool2d,
    avg_pool2d,
    max_pool2d,
)
from plugrad.functional.tensor import arange, expand_dims, gather, getitem, pad, squeeze
from plugrad.functional.vision import interpolate

__all__ = [
    "softmax", "logsoftmax", "logsumexp", "relu", "sigmoid", "leaky_relu", "gelu", "one_hot",
    "indexing_one_hot", "square_loss", "l1_loss", "cross_entropy", "binary_cross_entropy",
    "conv2d", "conv_transpose2d", "linear", "max_pool2d", "avg_pool2d", "adaptive_avg_pool2d",
    "adaptive_max_pool2d", "batch_norm", "dropout", "embedding", "pad", "hinge_loss", "prelu",
    "layer_norm", "group_norm", "interpolate", "conv1d", "normalize",
]


def _softmax_axis(ndim: int) -> int:
    # MegEngine's default: the class axis is 0 for vectors and CHW images, else 1.
    return 0 if ndim in (0, 1, 3) else 1


def softmax(inp: Tensor, axis: int | None = None) -> Tensor:
    """``exp(x) / sum(exp(x), axis)``, shifted by the maximum for stability."""
    x = to_float(as_tensor(inp))
    axis = _softmax_axis(x.ndim) if axis is None else normalize_axis("softmax", axis, x.ndim)
    return apply("softmax", x, axis=axis)


def logsoftmax(inp: Tensor, axis: int | None = None) -> Tensor:
    """``x - logsumexp(x, axis)``."""
    x = to_float(as_tensor(inp))
    axis = _softmax_axis(x.ndim) if axis is None else normalize_axis("logsoftmax", axis, x.ndim)
    return apply("logsoftmax", x, axis=axis)


def one_hot(inp: Tensor, num_classes: int) -> Tensor:
    """int32 one-hot rows: ``one_hot(Tensor([1, 3]), 4)`` is ``[[0 1 0 0] [0 0 0 1]]``."""
    inp = as_tensor(inp)
    if inp._dtype.kind not in "iu":
        raise TypeError(f"one_hot: expected integer class indices, got {inp._dtype}")
    check_index_range("one_hot", "class index", inp, num_classes)
    classes = arange(num_classes, dtype=inp._dtype, device=inp._device)
    return apply("cast", expand_dims(inp, -1) == classes, dtype=dtypes.int32)


def indexing_one_hot(src: Tensor, index: Tensor, axis: int = 1, keepdims: bool = False) -> Tensor:
    """Pick ``src[..., index, ...]`` along ``axis`` for every position of ``index``."""
    src = as_tensor(src)
    axis = normalize_axis("indexing_one_hot", axis, src.ndim)
    index = as_tensor(index, src)
    check_shape_without_axis("indexing_one_hot", "index", index, "the source", src, axis)
    if index._dtype.kind in "iu":
        check_index_range("indexing_one_hot", "index", index, src.shape[axis])
    out = gather(src, axis, expand_dims(index, axis))
    return out if keepdims else squeeze(out, axis)


def leaky_relu(inp: Tensor, negative_slope: float = 0.01) -> Tensor:
    """``x`` where positive, ``negative_slope * x`` elsewhere."""
    return apply("leaky_relu", to_float(as_tensor(inp)), negative_slope=float(negative_slope))


def prelu(x: Tensor, y: Tensor) -> Tensor:
    """``max(x, 0) + y * min(x, 0)``, ``y`` broadcast against ``x`` (MegEngine's ``prelu``).

    ``y`` follows the broadcasting rules, so one slope per channel of an NCHW ``x`` is shaped
    (1, C, 1, 1), as :class:`~plugrad.module.PReLU` keeps it.

    Example:
        >>> prelu(Tensor([-2.0, 3.0]), Tensor([0.25])).numpy()
        array([-0.5,  3. ], dtype=float32)
    """
    x = to_float(as_tensor(x))
    w = as_tensor(y, x)
    try:
        np.broadcast_shapes(tuple(x.shape), tuple(w.shape))
    except ValueError:
        raise ValueError(f"prelu: the slopes y of shape {tuple(w.shape)} do not broadcast "
                         f"against x of shape {tuple(x.shape)}; give one slope, shape (1,), "
                         f"or one per channel of an NCHW x, shape (1, C, 1, 1)") from None
    if w._dtype != x._dtype:
        w = apply("cast", w, dtype=x._dtype)
    zero = as_tensor_like(0.0, x)
    return apply("maximum", x, zero) + w * apply("minimum", x, zero)


def gelu(x: Tensor) -> Tensor:
    """``x * Phi(x)`` with Phi the standard normal CDF (the erf form, as MegEngine)."""
    return apply("gelu", to_float(as_tensor(x)))


def dropout(inp: Tensor, drop_prob: float, training: bool = True) -> Tensor:
    """Zero each element with probability ``drop_prob`` and scale the rest by 1 / (1 - p).

    Identity when ``training`` is False or ``drop_prob`` is 0. The mask comes from
    :func:`plugrad.random.seed`'s generator, so runs are reproducible.
    """
    if not 0.0 <= drop_prob < 1.0:
        raise ValueError(f"dropout: drop_prob must be in [0, 1); got {drop_prob}")
    x = to_float(as_tensor(inp))
    if not training or drop_prob == 0.0:
        return x
    from plugrad.random import next_seed

    return apply("dropout", x, drop_prob=float(drop_prob), seed=next_seed())


def _param_shape(x: Tensor) -> tuple[int, ...]:
    return (1, x.shape[1]) + (1,) * (x.ndim - 2)


def _as_param(op: str, name: str, value: Any, x: Tensor, fill: float) -> Tensor:
    shape = _param_shape(x)
    if value is None:
        return as_tensor_like(np.full(shape, fill), x, x._dtype)
    value = as_tensor(value, x)
    if value.size != x.shape[1]:
        raise ValueError(f"{op}: {name} of shape {value.shape} must hold one value per channel "
                         f"({x.shape[1]}), shaped {shape}")
    if value._dtype != x._dtype:
        value = apply("cast", value, dtype=x._dtype)
    return value if tuple(value.shape) == shape else apply("reshape", value, shape=shape)


def batch_norm(inp: Tensor, running_mean: Tensor | None = None,
               running_var: Tensor | None = None, weight: Tensor | None = None,
               bias: Tensor | None = None, *, training: bool = False, momentum: float = 0.9,
               eps: float = 1e-5, inplace: bool = True, compute_mode: str = "default",
               param_dim: str = "dim_1c11"):
    """Batch normalisation over every axis but the channel axis 1, MegEngine's convention.

    In training the batch statistics normalise and, when given, the running statistics are
    updated as ``running = momentum * running + (1 - momentum) * batch`` (the variance
    unbiased, ``n / (n - 1)``); outside training the running statistics normalise.

    Returns:
        The output; with ``inplace=False`` the tuple (output, new running_mean, new
        running_var) and the given running tensors are left unchanged.
    """
    op = "batch_norm"
    if param_dim != "dim_1c11":
        raise ValueError(f"{op}: only param_dim='dim_1c11' (parameters shaped (1, C, 1, 1)) is "
                         f"supported; got {param_dim!r}")
    x = to_float(as_tensor(inp))
    if x.ndim < 2:
        raise ValueError(f"{op}: expected an input of at least 2 dimensions (N, C, ...); got "
                         f"shape {x.shape}")
    w = _as_param(op, "weight", weight, x, 1.0)
    b = _as_param(op, "bias", bias, x, 0.0)
    axes = (0,) + tuple(range(2, x.ndim))
    if not training:
        if running_mean is None or running_var is None:
            raise ValueError(f"{op}: training=False normalises with running_mean and "
                             f"running_var, but they were not given")
        rm = _as_param(op, "running_mean", running_mean, x, 0.0)
        rv = _as_param(op, "running_var", running_var, x, 1.0)
        scale = w * (1.0 / apply("sqrt", rv + eps))
        out = (x - rm) * scale + b
        return out if inplace else (out, running_mean, running_var)
    attrs = dict(axes=axes, eps=float(eps))
    x_spec = spec_of(x)  # the whole call checked before any kernel runs (an empty batch too)
    OPS[op].rule(x_spec, spec_of(w), spec_of(b),
                 OPS["batch_norm_stats"].rule(x_spec, axes=axes), **attrs)
    # Computed once, off the tape: the forward, the running statistics and the backward share
    # them (the op's gradient accounts for their dependence on x).
    stats = apply("batch_norm_stats", x.detach(), axes=axes)
    out = apply(op, x, w, b, stats, **attrs)
    count = x.size // x.shape[1]
    new_mean = new_var = None
    if running_mean is not None or running_var is not None:
        batch_mean = apply("getitem", stats, index=(0,))
        batch_var = apply("getitem", stats, index=(1,)) * (count / (count - 1))
        if running_mean is not None:
            new_mean = _blend(op, "running_mean", running_mean, batch_mean, momentum, inplace)
        if running_var is not None:
            new_var = _blend(op, "running_var", running_var, batch_var, momentum, inplace)
    return out if inplace else (out, new_mean, new_var)


def _blend(op: str, name: str, running: Tensor, batch: Tensor, momentum: float,
           inplace: bool) -> Tensor:
    if not isinstance(running, Tensor):
        raise TypeError(f"{op}: {name} must be a Tensor to be updated; got "
                        f"{type(running).__name__}")
    if running.size != batch.size:
        raise ValueError(f"{op}: {name} of shape {running.shape} must hold one value per "
                         f"channel ({batch.size})")
    batch = batch if tuple(batch.shape) == tuple(running.shape) \
        else apply("reshape", batch, shape=tuple(running.shape))
    if batch._dtype != running._dtype:
        batch = apply("cast", batch, dtype=running._dtype)
    blended = running.detach() * momentum + batch * (1.0 - momentum)
    if inplace:
        running._set_data(blended._data)
        return running
    return blended


def embedding(inp: Tensor, weight: Tensor, padding_idx: int | None = None,
              max_norm: float | None = None, norm_type: float | None = None) -> Tensor:
    """Rows of ``weight`` (num_embeddings, dim) picked by the integer ``inp``: shape
    ``inp.shape + (dim,)``."""
    if padding_idx is not None or max_norm is not None or norm_type is not None:
        raise ValueError("embedding: padding_idx, max_norm and norm_type are not supported; "
                         "leave them None")
    weight = as_tensor(weight)
    index = as_tensor(inp, weight)
    if index._dtype.kind not in "iu":
        raise TypeError(f"embedding: the input must hold integer indices; got "
                        f"{index._dtype}")
    if weight.ndim != 2:
        raise ValueError(f"embedding: weight must be 2-D (num_embeddings, dim); got shape "
                         f"{weight.shape}")
    check_index_range("embedding", "index", index, weight.shape[0])
    return getitem(weight, index)
