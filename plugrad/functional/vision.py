"""``interpolate`` (``F.vision.interpolate``, also ``F.nn.interpolate``): resizing feature maps.

Nearest picks source positions with an integer index (getitem, so the gradient is index_add);
the linear modes and bicubic multiply by an interpolation matrix along each resized axis
(matmul, so the gradient is a matmul by its transpose). The matrices are built on the host
once per call from the sizes alone, which keeps every backend on its existing primitives.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from plugrad.core.dispatch import apply
from plugrad.core.tensor import Tensor
from plugrad.functional._utils import as_tensor, host_tensor, to_float

__all__ = ["interpolate"]

# mode -> the input's rank (number of axes)
_MODES = {"nearest": 4, "linear": 3, "bilinear": 4, "bicubic": 4, "trilinear": 5}
_SHAPES = {3: "(N, C, L)", 4: "(N, C, H, W)", 5: "(N, C, D, H, W)"}
_CUBIC_A = -0.75  # the cubic convolution kernel's parameter (OpenCV's and MegEngine's)


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


def _cubic_near(d: np.ndarray) -> np.ndarray:
    """The cubic kernel's weight at distance ``d`` in [0, 1]."""
    a = _CUBIC_A
    return ((a + 2) * d - (a + 3)) * d * d + 1


def _cubic_far(d: np.ndarray) -> np.ndarray:
    """The cubic kernel's weight at distance ``d`` in [1, 2]."""
    a = _CUBIC_A
    return ((a * d - 5 * a) * d + 8 * a) * d - 4 * a


def cubic_weights(src: int, dst: int) -> np.ndarray:
    """The (dst, src) matrix of cubic convolution (A = -0.75) at half-pixel centres.

    Each output reads the four inputs around ``(d + 0.5) * src / dst - 0.5``; taps outside
    the input read the border element (their weights add onto it).
    """
    pos = (np.arange(dst, dtype=np.float64) + 0.5) * (src / dst) - 0.5
    base = np.floor(pos)
    t = pos - base
    taps = np.stack([_cubic_far(t + 1), _cubic_near(t), _cubic_near(1 - t), _cubic_far(2 - t)],
                    axis=1)
    columns = np.clip(base.astype(np.intp)[:, None] + np.arange(-1, 3), 0, src - 1)
    weights = np.zeros((dst, src))
    np.add.at(weights, (np.repeat(np.arange(dst), 4), columns.ravel()), taps.ravel())
    return weights


def nearest_index(src: int, dst: int) -> np.ndarray:
    """Output position ``d`` reads input ``min(trunc(d / (dst / src)), src - 1)``.

    Computed in float32 like MegEngine's resize kernel, so the rare output whose exact
    source is an integer picks the same neighbour MegEngine picks.
    """
    scale = np.float32(dst) / np.float32(src)
    index = np.arange(dst, dtype=np.float32) / scale
    return np.minimum(index.astype(np.int64), src - 1).astype(np.int32)


def _out_size(x: Tensor, size: Any, scale_factor: Any, mode: str) -> tuple[int, ...]:
    op = "interpolate"
    spatial = x.ndim - 2
    if (size is None) == (scale_factor is None):
        raise ValueError(f"{op}: give exactly one of size and scale_factor; got size={size!r}, "
                         f"scale_factor={scale_factor!r}")
    one = spatial == 1
    if size is not None:
        if isinstance(size, Tensor):
            size = size.tolist()
        if isinstance(size, (int, np.integer)) and not isinstance(size, bool):
            if not one:  # MegEngine reads an int as (size, 1) here; refuse rather than guess
                raise ValueError(f"{op}: mode {mode!r} needs size as {spatial} ints, one per "
                                 f"spatial axis of the input of shape {x.shape}; got the int "
                                 f"{size} (write {(size,) * spatial} for a square output)")
            size = (size,)
        elif one:
            raise ValueError(f"{op}: mode 'linear' takes size as a single int; got {size!r}")
        sizes = tuple(size) if isinstance(size, (tuple, list)) else (size,)
        if len(sizes) != spatial or not all(isinstance(s, (int, np.integer))
                                            and not isinstance(s, bool) and s > 0
                                            for s in sizes):
            raise ValueError(f"{op}: size must be {spatial} positive int(s) for mode {mode!r} "
                             f"and an input of shape {x.shape}; got {size!r}")
        return tuple(int(s) for s in sizes)
    if isinstance(scale_factor, (int, float)) and not isinstance(scale_factor, bool):
        scales = (scale_factor,) * spatial
    elif one:
        raise ValueError(f"{op}: mode 'linear' takes scale_factor as a single number; got "
                         f"{scale_factor!r}")
    else:
        scales = tuple(scale_factor) if isinstance(scale_factor, (tuple, list)) \
            else (scale_factor,)
    if len(scales) != spatial or not all(isinstance(s, (int, float)) and not isinstance(s, bool)
                                         and s > 0 for s in scales):
        raise ValueError(f"{op}: scale_factor must be a positive number or {spatial} of them "
                         f"for mode {mode!r} and an input of shape {x.shape}; got "
                         f"{scale_factor!r}")
    # MegEngine rounds the product to float32 before flooring it.
    sizes = tuple(int(np.floor(np.float32(n * float(s)))) for n, s in zip(x.shape[2:], scales))
    if min(sizes) < 1:
        raise ValueError(f"{op}: scale_factor {scale_factor!r} shrinks the input's spatial shape "
                         f"{tuple(x.shape[2:])} to {sizes}; every size must stay at least 1")
    return sizes


def interpolate(inp: Tensor, size: int | Sequence[int] | None = None,
                scale_factor: float | Sequence[float] | None = None, mode: str = "bilinear",
                align_corners: bool | None = None) -> Tensor:
    """Resize the spatial axes of an NCL, NCHW or NCDHW input (MegEngine 1.13's modes).

    Args:
        inp: (N, C, L) for ``"linear"``, (N, C, D, H, W) for ``"trilinear"``, (N, C, H, W)
            for ``"bilinear"``, ``"bicubic"`` and ``"nearest"``.
        size: the output's spatial size, one int per spatial axis (a single int for
            ``"linear"``); or ``scale_factor``, multiplying the input's (rounded down).
        mode: ``"nearest"`` (input ``trunc(d * in / out)``), ``"linear"``, ``"bilinear"``,
            ``"trilinear"`` or ``"bicubic"`` (cubic convolution, A = -0.75, border repeated);
            any letter case.
        align_corners: the linear modes only (None is False). True maps the corner samples
            onto each other; False samples at half-pixel centres, clamped at the border.
            Other modes refuse any value but None, as MegEngine does.

    Example:
        >>> interpolate(Tensor([[[[1.0, 2.0]]]]), size=(1, 4), align_corners=True).numpy()
        array([[[[1.       , 1.3333334, 1.6666667, 2.       ]]]], dtype=float32)
    """
    op = "interpolate"
    x = to_float(as_tensor(inp))
    kind = mode.lower() if isinstance(mode, str) else mode
    if kind not in _MODES:
        raise ValueError(f"{op}: mode must be one of {sorted(_MODES)}; got {mode!r}")
    linear = kind in ("linear", "bilinear", "trilinear")
    if not linear and align_corners is not None:
        raise ValueError(f"{op}: align_corners applies to the linear modes only; got "
                         f"align_corners={align_corners!r} with mode {kind!r} (leave it None)")
    rank = _MODES[kind]
    if x.ndim != rank:
        raise ValueError(f"{op}: mode {kind!r} expects an input of shape {_SHAPES[rank]}; got "
                         f"shape {x.shape}")
    sizes = _out_size(x, size, scale_factor, kind)
    for axis, (src, dst) in enumerate(zip(x.shape[2:], sizes), start=2):
        if src == dst:
            continue
        if kind == "nearest":
            index = host_tensor(nearest_index(src, dst), x)
            x = apply("getitem", x, index=(slice(None),) * axis + (index._data,))
        elif kind == "bicubic":
            x = _resample(x, axis, cubic_weights(src, dst))
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
