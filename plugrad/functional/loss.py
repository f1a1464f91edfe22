"""Loss functions (``F.loss``, also under ``F.nn``), with MegEngine's signatures."""
from __future__ import annotations

from typing import Any

from plugrad.core import dtypes
from plugrad.core.dispatch import apply
from plugrad.core.tensor import Tensor
from plugrad.functional import math as _math
from plugrad.functional._utils import (
    as_tensor,
    check_index_range,
    check_shape_without_axis,
    normalize_axis,
    to_float,
)
from plugrad.functional.elementwise import log

__all__ = ["square_loss", "l1_loss", "cross_entropy", "binary_cross_entropy", "hinge_loss"]

_REDUCTIONS = ("mean", "sum", "none")


def _reduce(op: str, loss: Tensor, reduction: str) -> Tensor:
    if reduction == "mean":
        return _math.mean(loss)
    if reduction == "sum":
        return _math.sum(loss)
    if reduction == "none":
        return loss
    raise ValueError(f"{op}: reduction must be one of {_REDUCTIONS}, got {reduction!r}")


def _pair(op: str, pred: Any, label: Any) -> tuple[Tensor, Tensor]:
    pred = to_float(as_tensor(pred))
    label = as_tensor(label, pred)
    if tuple(pred.shape) != tuple(label.shape):
        raise ValueError(f"{op}: pred shape {pred.shape} and label shape {label.shape} must match")
    return pred, label


def square_loss(pred: Tensor, label: Tensor, reduction: str = "mean") -> Tensor:
    """Mean squared error; ``square_loss([3,3,3,3], [2,8,6,1])`` is 9.75."""
    pred, label = _pair("square_loss", pred, label)
    diff = pred - label
    return _reduce("square_loss", diff * diff, reduction)


def l1_loss(pred: Tensor, label: Tensor, reduction: str = "mean") -> Tensor:
    """Mean absolute error."""
    pred, label = _pair("l1_loss", pred, label)
    return _reduce("l1_loss", abs(pred - label), reduction)


def cross_entropy(pred: Tensor, label: Tensor, axis: int = 1, with_logits: bool = True,
                  label_smooth: float = 0, reduction: str = "mean") -> Tensor:
    """Cross entropy of class scores ``pred`` against integer class ``label`` along ``axis``.

    Args:
        pred: logits (``with_logits=True``) or probabilities, e.g. shape ``(N, C)``.
        label: class indices of ``pred``'s shape without ``axis``, e.g. ``(N,)``.
        label_smooth: mixes the one-hot target with the uniform distribution by this weight.
        reduction: ``"mean"``, ``"sum"`` or ``"none"``.
    """
    pred = to_float(as_tensor(pred))
    axis = normalize_axis("cross_entropy", axis, pred.ndim)
    label = as_tensor(label, pred)
    check_shape_without_axis("cross_entropy", "label", label, "pred", pred, axis)
    if label._dtype.kind not in "iu":
        raise TypeError(f"cross_entropy: label must hold integer class indices, got "
                        f"{label._dtype}")
    if reduction not in _REDUCTIONS:
        raise ValueError(f"cross_entropy: reduction must be one of {_REDUCTIONS}, got "
                         f"{reduction!r}")
    check_index_range("cross_entropy", "label", label, pred.shape[axis])
    if with_logits and not label_smooth:
        # One fused op: its kernel and vjp skip materialising log-probabilities twice.
        if label._dtype != dtypes.int32:
            label = apply("cast", label, dtype=dtypes.int32)
        return _reduce("cross_entropy", apply("softmax_cross_entropy", pred, label, axis=axis),
                       reduction)
    from plugrad.functional.nn import indexing_one_hot, logsoftmax  # nn imports this module

    log_prob = logsoftmax(pred, axis) if with_logits else log(pred)
    loss = -indexing_one_hot(log_prob, label, axis)
    if label_smooth:
        loss = loss * (1 - label_smooth) - _math.mean(log_prob, axis) * label_smooth
    return _reduce("cross_entropy", loss, reduction)


def binary_cross_entropy(pred: Tensor, label: Tensor, with_logits: bool = True,
                         reduction: str = "mean") -> Tensor:
    """Binary cross-entropy of ``pred`` against targets ``label`` in [0, 1] (same shape).

    Args:
        pred: logits (``with_logits=True``, computed stably as
            ``max(x, 0) - x * y + log(1 + exp(-|x|))``) or probabilities.
        label: targets, usually 0 or 1.
        reduction: ``"mean"``, ``"sum"`` or ``"none"``.
    """
    pred, label = _pair("binary_cross_entropy", pred, label)
    if label._dtype != pred._dtype:
        label = apply("cast", label, dtype=pred._dtype)
    if reduction not in _REDUCTIONS:
        raise ValueError(f"binary_cross_entropy: reduction must be one of {_REDUCTIONS}, got "
                         f"{reduction!r}")
    loss = apply("binary_cross_entropy", pred, label, with_logits=bool(with_logits))
    return _reduce("binary_cross_entropy", loss, reduction)


def hinge_loss(pred: Tensor, label: Tensor, norm: str = "L1", reduction: str = "mean") -> Tensor:
    """Per-sample hinge loss ``sum_j max(0, 1 - pred[:, j] * label[:, j])`` (squared for L2).

    Args:
        pred: scores of shape (N, C).
        label: targets of the same shape, -1 or 1.
        norm: ``"L1"`` (the hinge) or ``"L2"`` (the squared hinge), summed over axis 1.
        reduction: ``"mean"`` over the samples, ``"sum"`` or ``"none"`` (shape (N,)).

    Example:
        >>> hinge_loss(Tensor([[0.5, -2.0]]), Tensor([[1.0, -1.0]])).numpy()
        array(0.5, dtype=float32)
    """
    pred, label = _pair("hinge_loss", pred, label)
    if pred.ndim != 2:
        raise ValueError(f"hinge_loss: pred must be 2-D (N, C); got shape {pred.shape}")
    mode = norm.upper() if isinstance(norm, str) else norm
    if mode not in ("L1", "L2"):
        raise ValueError(f"hinge_loss: norm must be 'L1' or 'L2'; got {norm!r}")
    if reduction not in _REDUCTIONS:
        raise ValueError(f"hinge_loss: reduction must be one of {_REDUCTIONS}, got {reduction!r}")
    if label._dtype != pred._dtype:
        label = apply("cast", label, dtype=pred._dtype)
    margin = 1.0 - pred * label
    hinge = apply("maximum", margin, as_tensor(0.0, margin))
    if mode == "L2":
        hinge = hinge * hinge
    return _reduce("hinge_loss", _math.sum(hinge, axis=1), reduction)
