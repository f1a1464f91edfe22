"""``interpolate`` (``F.vision.interpolate``, also ``F.nn.interpolate``): resizing feature maps.

Nearest picks source positions with an integer index (getitem, so the gradient is index_add);
linear and bilinear multiply by an interpolation matrix along each resized axis (matmul, so
the gradient is a matmul by its transpose). The matrices are built on the host once per call
from the sizes alone, which keeps every backend on its existing primitives.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from plugrad.core.dispatch import apply
from plugrad.core.tensor import Tensor
from plugrad.functional._utils import as_tensor, host_tensor, to_float

__all__ = ["interpolate"]

_MODES = {"nearest": None, "linear": 3, "bilinear": 4}


def _source_positions(src: int, dst: int, align_corners: bool) -> np.ndarray:
    """Where each output position samples the input, in input coordinates (float64)."""
    out = np.arange(dst, dtype=np.float64)
    if align_corners:
        return out * ((src - 1) / (dst - 1)) if dst > 1 else np.zeros(dst)
    return np.maximum((out + 0.5) * (src / dst) - 0.5, 0.0)


def linear_weights(src: int, dst: int, align_corners: bool) -> np.ndarray:
    """The (dst, src) matrix of linear interpolation: two neighbours per row, summing to 1."""
    pos = _source_positions(src, dst, align_corners)
    low = np.minimum(np.floor(pos).astype(np.intp), src - 1)
    high = np.minimum(low + 1, src - 1)
    frac = pos - low
    weights = np.zeros((dst, src))
    rows = np.arange(dst)
    np.add.at(weights, (rows, low), 1.0 - frac)
    np.add.at(weights, (rows, high), frac)
    return weights


def nearest_index(src: int, dst: int) -> np.ndarray:
    """Output position ``d`` reads input position ``floor(d * src / dst)``."""
    return (np.arange(dst, dtype=np.int64) * src // dst).astype(np.int32)


def _out_size(inp: Tensor, size: Any, scale_factor: Any, spatial: int) -> tuple[int, ...]:
    op = "interpolate"
    if (size is None) == (scale_factor is None):
        raise ValueError(f"{op}: give exactly one of size and scale_factor; got size={size!r}, "
                         f"scale_factor={scale_factor!r}")
    if size is not None:
        sizes = (size,) * spatial if isinstance(size, int) else tuple(size)
        if len(sizes) != spatial or not all(isinstance(s, int) and s > 0 for s in sizes):
            raise ValueError(f"{op}: size must be a positive int or {spatial} positive ints for "
                             f"an input of shape {inp.shape}; got {size!r}")
        return sizes
    scales = (scale_factor,) * spatial if isinstance(scale_factor, (int, float)) \
        else tuple(scale_factor)
    if len(scales) != spatial or not all(isinstance(s, (int, float)) and s > 0 for s in scales):
        raise ValueError(f"{op}: scale_factor must be a positive number or {spatial} of them "
                         f"for an input of shape {inp.shape}; got {scale_factor!r}")
    sizes = tuple(int(np.floor(n * s)) for n, s in zip(inp.shape[2:], scales))
    if min(sizes) < 1:
        raise ValueError(f"{op}: scale_factor {scale_factor!r} shrinks the input's spatial shape "
                         f"{inp.shape[2:]} to {sizes}; every size must stay at least 1")
    return sizes


def interpolate(inp: Tensor, size: int | Sequence[int] | None = None,
                scale_factor: float | Sequence[float] | None = None, mode: str = "bilinear",
                align_corners: bool | None = None) -> Tensor:
    """Resize the spatial axes of an NCL or NCHW input.

    Args:
        inp: (N, C, L) for ``"linear"``, (N, C, H, W) for ``"bilinear"``, either for
            ``"nearest"``.
        size: the output's spatial size; or ``scale_factor``, multiplying it (rounded down).
        mode: ``"nearest"`` (input ``floor(d * in / out)``), ``"linear"`` or ``"bilinear"``.
        align_corners: linear modes only. True maps the corner samples onto each other;
            False (the default) samples at half-pixel centres, clamped at the border.

    Example:
        >>> interpolate(Tensor([[[[1.0, 2.0]]]]), size=(1, 4), align_corners=True).numpy()
        array([[[[1.       , 1.3333334, 1.6666667, 2.       ]]]], dtype=float32)
    """
    op = "interpolate"
    x = to_float(as_tensor(inp))
    if mode not in _MODES:
        raise ValueError(f"{op}: mode must be one of {sorted(_MODES)}; got {mode!r}")
    rank = _MODES[mode]
    if (rank is None and x.ndim not in (3, 4)) or (rank is not None and x.ndim != rank):
        wanted = "(N, C, L) or (N, C, H, W)" if rank is None \
            else "(N, C, L)" if rank == 3 else "(N, C, H, W)"
        raise ValueError(f"{op}: mode {mode!r} expects an input of shape {wanted}; got shape "
                         f"{x.shape}")
    if mode == "nearest" and align_corners:
        raise ValueError(f"{op}: align_corners applies to the linear modes only; got "
                         f"align_corners=True with mode 'nearest'")
    sizes = _out_size(x, size, scale_factor, x.ndim - 2)
    for axis, (src, dst) in enumerate(zip(x.shape[2:], sizes), start=2):
        if src == dst:
            continue
        if mode == "nearest":
            index = host_tensor(nearest_index(src, dst), x)
            x = apply("getitem", x, index=(slice(None),) * axis + (index._data,))
        else:
            x = _resample(x, axis, linear_weights(src, dst, bool(align_corners)))
    return x if x is not inp else apply("copy", x)


def _resample(x: Tensor, axis: int, weights: np.ndarray) -> Tensor:
    """``x`` with ``axis`` replaced by ``weights @ x`` along it (moved last and back)."""
    last = x.ndim - 1
    perm = tuple(i for i in range(x.ndim) if i != axis) + (axis,)
    moved = x if axis == last else apply("transpose", x, perm=perm)
    matrix = host_tensor(np.ascontiguousarray(weights.T).astype(x._dtype), x)
    out = apply("matmul", moved, matrix)
    if axis == last:
        return out
    inverse = tuple(sorted(range(x.ndim), key=perm.__getitem__))
    return apply("transpose", out, perm=inverse)
