"""``tile``, ``repeat`` and ``eye``: built from reshape, broadcast_to and comparisons.

Each is a view-like broadcast followed by one reshape, so the gradient is broadcast_to's (a sum
over the copies) and every backend runs them with its primitives.
"""
from __future__ import annotations

from typing import Any, Iterable

import numpy as np

from plugrad.core.device import get_device
from plugrad.core.dispatch import apply
from plugrad.core.tensor import Tensor
from plugrad.functional._utils import as_tensor, normalize_axis
from plugrad.functional.elementwise import astype, equal
from plugrad.functional.tensor import arange, reshape

__all__ = ["tile", "repeat", "eye"]


def _count(op: str, name: str, value: Any) -> int:
    if isinstance(value, Tensor) and value.ndim == 0 and value._dtype.kind in "iu":
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{op}: {name} must be an int; got {type(value).__name__} {value!r}")
    if value < 0:
        raise ValueError(f"{op}: {name} must be non-negative; got {value}")
    return int(value)


def tile(inp: Tensor, reps: int | Iterable[int]) -> Tensor:
    """``inp`` repeated ``reps[i]`` times along axis ``i``.

    As in MegEngine, ``reps`` has at least ``inp.ndim`` entries; a longer one adds leading
    axes to ``inp``.

    Example:
        >>> tile(Tensor([[1, 2]]), (2, 2)).numpy()
        array([[1, 2, 1, 2],
               [1, 2, 1, 2]], dtype=int32)
    """
    x = as_tensor(inp)
    if isinstance(reps, Tensor):
        reps = reps.tolist()
    if isinstance(reps, (int, np.integer)):
        reps = (reps,)
    if not isinstance(reps, (tuple, list)):
        raise TypeError(f"tile: reps must be a sequence of ints; got {reps!r}")
    reps = tuple(_count("tile", "each of reps", r) for r in reps)
    if len(reps) < x.ndim:
        raise ValueError(f"tile: reps {reps} has {len(reps)} entries for an input of shape "
                         f"{tuple(x.shape)}; expected at least {x.ndim}, one per axis (pad reps "
                         f"with leading 1s)")
    ndim = len(reps)
    shape = (1,) * (ndim - x.ndim) + tuple(x.shape)
    # (s0, s1) -> (1, s0, 1, s1) -> (r0, s0, r1, s1) -> (r0 * s0, r1 * s1)
    spread = tuple(d for s in shape for d in (1, s))
    wide = tuple(d for r, s in zip(reps, shape) for d in (r, s))
    out_shape = tuple(r * s for r, s in zip(reps, shape))
    if out_shape == tuple(x.shape):
        return apply("copy", x)
    return reshape(apply("broadcast_to", reshape(x, spread), shape=wide), out_shape)


def repeat(inp: Tensor, repeats: int, axis: int | None = None) -> Tensor:
    """Each element repeated ``repeats`` times along ``axis`` (of the flattened input if None).

    Example:
        >>> repeat(Tensor([[1, 2], [3, 4]]), 2, axis=1).numpy()
        array([[1, 1, 2, 2],
               [3, 3, 4, 4]], dtype=int32)
    """
    x = as_tensor(inp)
    repeats = _count("repeat", "repeats", repeats)
    if axis is None:
        x = reshape(x, (x.size,))
        axis = 0
    elif x.ndim == 0:
        raise ValueError(f"repeat: axis {axis} given for a 0-d tensor, which has no axes; "
                         f"pass axis=None")
    axis = normalize_axis("repeat", axis, x.ndim)
    shape = tuple(x.shape)
    spread = shape[:axis + 1] + (1,) + shape[axis + 1:]
    wide = shape[:axis + 1] + (repeats,) + shape[axis + 1:]
    out_shape = shape[:axis] + (shape[axis] * repeats,) + shape[axis + 1:]
    return reshape(apply("broadcast_to", reshape(x, spread), shape=wide), out_shape)


def eye(N: int, M: int | None = None, *, dtype: Any = "float32", device: Any = None) -> Tensor:
    """An ``N`` x ``M`` matrix (``M`` defaults to ``N``) with ones on the diagonal.

    ``N`` and ``M`` are ints or 0-d integer Tensors, as in MegEngine.

    Example:
        >>> eye(2, 3).numpy()
        array([[1., 0., 0.],
               [0., 1., 0.]], dtype=float32)
    """
    rows = _count("eye", "N", N)
    cols = rows if M is None else _count("eye", "M", M)
    dev = get_device(device)
    i = reshape(arange(rows, dtype="int32", device=dev), (rows, 1))
    j = reshape(arange(cols, dtype="int32", device=dev), (1, cols))
    return astype(equal(i, j), dtype)
