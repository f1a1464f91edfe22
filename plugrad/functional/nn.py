"""Neural-network functions (``F.nn``): activations, softmax family, one-hot, and the losses."""
from __future__ import annotations

from typing import Any

from plugrad.core import dtypes
from plugrad.core.dispatch import apply
from plugrad.core.tensor import Tensor
from plugrad.functional._utils import as_tensor, normalize_axis, to_float
from plugrad.functional.elementwise import relu, sigmoid
from plugrad.functional.loss import cross_entropy, l1_loss, square_loss
from plugrad.functional.math import logsumexp
from plugrad.functional.tensor import arange, expand_dims, gather, squeeze

__all__ = [
    "softmax", "logsoftmax", "logsumexp", "relu", "sigmoid", "one_hot", "indexing_one_hot",
    "square_loss", "l1_loss", "cross_entropy",
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
    if inp._data.dtype.kind not in "iu":
        raise TypeError(f"one_hot: expected integer class indices, got {inp._data.dtype}")
    classes = arange(num_classes, dtype=inp._data.dtype, device=inp._device)
    return apply("cast", expand_dims(inp, -1) == classes, dtype=dtypes.int32)


def indexing_one_hot(src: Tensor, index: Tensor, axis: int = 1, keepdims: bool = False) -> Tensor:
    """Pick ``src[..., index, ...]`` along ``axis`` for every position of ``index``."""
    src = as_tensor(src)
    axis = normalize_axis("indexing_one_hot", axis, src.ndim)
    index = as_tensor(index, src)
    expected = src.shape[:axis] + src.shape[axis + 1:]
    if tuple(index.shape) != expected:
        raise ValueError(f"indexing_one_hot: index shape {index.shape} must be the source shape "
                         f"{src.shape} without axis {axis}, i.e. {expected}")
    out = gather(src, axis, expand_dims(index, axis))
    return out if keepdims else squeeze(out, axis)
