"""Sorting along the last axis: ``sort``, ``argsort`` and ``topk`` (MegEngine's signatures).

All three read one stable ``argsort``, so ties come out in their order in the input (first
occurrence first) in both directions, and every backend gives the same indices. MegEngine
sorts 1-D and 2-D inputs; here any input of 1 or more dimensions is sorted along its last
axis. Values are gathered at those indices, so their gradient flows back to the positions
they came from.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from plugrad.core.dispatch import apply
from plugrad.core.tensor import Tensor
from plugrad.functional._utils import as_tensor
from plugrad.functional.elementwise import astype, equal
from plugrad.functional.math import argmax

__all__ = ["argsort", "sort", "topk"]


def _order(op: str, inp: Any, descending: Any) -> tuple[Tensor, Tensor]:
    x = as_tensor(inp)
    if x.ndim == 0:
        raise ValueError(f"{op}: cannot sort a 0-d tensor; expected a tensor of 1 or more "
                         f"dimensions, sorted along its last axis (reshape it to (1,) first)")
    if not isinstance(descending, bool):
        raise TypeError(f"{op}: descending must be a bool; got {descending!r}")
    return x, apply("argsort", x, axis=x.ndim - 1, descending=descending)


def argsort(inp: Tensor, descending: bool = False) -> Tensor:
    """int32 positions that sort ``inp`` along its last axis; ties keep their input order.

    Example:
        >>> argsort(Tensor([3.0, 1.0, 3.0, 2.0]), descending=True).numpy()
        array([0, 2, 3, 1], dtype=int32)
    """
    return _order("argsort", inp, descending)[1]


def sort(inp: Tensor, descending: bool = False) -> tuple[Tensor, Tensor]:
    """``(sorted values, int32 indices)`` along the last axis (ascending unless ``descending``).

    Example:
        >>> values, indices = sort(Tensor([2.0, 0.5, 1.0]))
        >>> values.numpy(), indices.numpy()
        (array([0.5, 1. , 2. ], dtype=float32), array([1, 2, 0], dtype=int32))
    """
    x, order = _order("sort", inp, descending)
    return apply("gather", x, order, axis=x.ndim - 1), order


def topk(inp: Tensor, k: int, descending: bool = True, kth_only: bool = False,
         no_sort: bool = False) -> tuple[Tensor, Tensor]:
    """The ``k`` largest elements along the last axis (the smallest with ``descending=False``).

    Args:
        inp: a tensor of 1 or more dimensions; each row of its last axis is searched.
        k: how many elements to keep, ``1 <= k <= inp.shape[-1]`` (an int or a 0-d Tensor).
        descending: True (the default, as in MegEngine 1.13) takes the largest elements.
        kth_only: return only the k-th element of each row, shape ``inp.shape[:-1]``, and the
            int32 position of its first occurrence in the row.
        no_sort: the k elements may come in any order (here they are always sorted).

    Returns:
        ``(values, int32 indices)``, each of shape ``inp.shape[:-1] + (k,)``; ties keep their
        input order.

    Example:
        >>> values, indices = topk(Tensor([4.0, 1.0, 3.0, 2.0]), 2, descending=False)
        >>> values.numpy(), indices.numpy()
        (array([1., 2.], dtype=float32), array([1, 3], dtype=int32))
    """
    x = as_tensor(inp)
    if isinstance(k, Tensor):
        k = k.item()
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
        raise TypeError(f"topk: k must be an int; got {type(k).__name__} {k!r}")
    k = int(k)
    if x.ndim and not 1 <= k <= x.shape[-1]:
        raise ValueError(f"topk: k={k} is out of range for {x.shape[-1]} elements along the "
                         f"last axis of shape {x.shape}; expected 1 <= k <= {x.shape[-1]}")
    x, order = _order("topk", x, descending)
    axis = x.ndim - 1
    lead = (slice(None),) * axis
    if kth_only:
        picked = apply("getitem", order, index=lead + (slice(k - 1, k),))
        kth = apply("gather", x, picked, axis=axis)
        # MegEngine reports where the k-th value first occurs in the row.
        first = argmax(astype(equal(x, kth), "int32"), axis=axis)
        return apply("reshape", kth, shape=x.shape[:-1]), first
    picked = apply("getitem", order, index=lead + (slice(0, k),))
    return apply("gather", x, picked, axis=axis), picked
