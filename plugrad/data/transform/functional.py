"""NumPy image kernels used by the vision transforms (no OpenCV needed).

Every kernel takes ``hw_axis``, the axis holding the image height (the width follows it),
so that the same code serves one HxWxC image (``hw_axis=0``) and a stacked NxHxWxC batch
(``hw_axis=1``).

Interpolation follows OpenCV's conventions:

* nearest: destination pixel ``d`` reads source pixel ``floor(d * src / dst)``
  (OpenCV's ``INTER_NEAREST``, computed exactly in integers);
* bilinear: half-pixel centres, ``s = (d + 0.5) * src / dst - 0.5``, clamped to
  ``[0, src - 1]`` at the borders (OpenCV's ``INTER_LINEAR``). It is computed in floating
  point; integer images are then rounded half up. OpenCV computes uint8 images in 11-bit
  fixed point, so its results can differ from these by one grey level.
"""

from __future__ import annotations

import functools
from typing import Any, Sequence

import numpy as np

__all__ = ["INTER_NEAREST", "INTER_LINEAR", "pad", "resize", "flip", "interp_code"]

INTER_NEAREST = 0  # same numeric codes as cv2, so cv2 constants can be passed too
INTER_LINEAR = 1
_INTERP_NAMES = {"nearest": INTER_NEAREST, "linear": INTER_LINEAR, "bilinear": INTER_LINEAR}


def interp_code(interpolation: Any) -> int:
    """Normalise an interpolation given as a code or a name; reject unsupported ones."""
    if isinstance(interpolation, str):
        code = _INTERP_NAMES.get(interpolation.lower())
    else:
        code = int(interpolation) if isinstance(interpolation, (int, np.integer)) else None
    if code not in (INTER_NEAREST, INTER_LINEAR):
        raise ValueError(
            f"unsupported interpolation {interpolation!r}: only nearest (0) and bilinear (1) are "
            "implemented"
        )
    return code


def _as_key(value: Any) -> tuple[float, ...]:
    if isinstance(value, tuple):
        return value
    return tuple(float(v) for v in np.asarray(value, dtype=np.float64).reshape(-1))


@functools.lru_cache(maxsize=64)
def _fill_value(value: tuple[float, ...], dtype: np.dtype, channels: int) -> Any:
    """Pad value as OpenCV's Scalar: one entry per channel, missing entries zero;
    ``channels == 0`` means the image has no channel axis."""
    v = np.asarray(value, dtype=np.float64)
    if channels:
        v = np.concatenate([v[:channels], np.zeros(max(0, channels - v.size))])
    else:
        v = v[:1]
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        v = np.clip(np.floor(v + 0.5), info.min, info.max)
    v = v.astype(dtype)
    return v if channels else v[0]


def pad(image: np.ndarray, sizes: Sequence[int], value: Any = 0, hw_axis: int = 0) -> np.ndarray:
    """Constant-border padding by ``sizes = (top, bottom, left, right)``."""
    top, bottom, left, right = sizes
    if min(top, bottom, left, right) < 0:
        raise ValueError(f"pad sizes must be non-negative, got {tuple(sizes)}")
    shape = list(image.shape)
    h, w = shape[hw_axis], shape[hw_axis + 1]
    H, W = h + top + bottom, w + left + right
    shape[hw_axis], shape[hw_axis + 1] = H, W
    channels = shape[-1] if image.ndim > hw_axis + 2 else 0
    fill = _fill_value(_as_key(value), image.dtype, channels)
    out = np.empty(shape, dtype=image.dtype)
    if hw_axis == 0:
        if out.size <= 4096:  # small: one fill beats four strip writes
            out[...] = fill
        else:
            out[:top] = fill
            out[top + h :] = fill
            out[top : top + h, :left] = fill
            out[top : top + h, left + w :] = fill
        out[top : top + h, left : left + w] = image
        return out
    lead = (slice(None),) * hw_axis
    out[lead + (slice(0, top),)] = fill
    out[lead + (slice(top + h, H),)] = fill
    out[lead + (slice(top, top + h), slice(0, left))] = fill
    out[lead + (slice(top, top + h), slice(left + w, W))] = fill
    out[lead + (slice(top, top + h), slice(left, left + w))] = image
    return out


def flip(image: np.ndarray, axis: int) -> np.ndarray:
    """Mirror along ``axis``; returns a view (no copy)."""
    index = [slice(None)] * image.ndim
    index[axis] = slice(None, None, -1)
    return image[tuple(index)]


@functools.lru_cache(maxsize=256)
def _nearest_index(src: int, dst: int) -> np.ndarray:
    return (np.arange(dst, dtype=np.int64) * src // dst).astype(np.intp)


@functools.lru_cache(maxsize=256)
def _linear_coeffs(src: int, dst: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    scale = src / dst
    f = (np.arange(dst, dtype=np.float64) + 0.5) * scale - 0.5
    f = np.clip(f, 0.0, src - 1)
    i0 = np.floor(f).astype(np.intp)
    i1 = np.minimum(i0 + 1, src - 1)
    w1 = f - i0
    return i0, i1, w1


def _work_dtype(dtype: np.dtype) -> np.dtype:
    if dtype == np.float64 or dtype.itemsize >= 4 and np.issubdtype(dtype, np.integer):
        return np.dtype(np.float64)
    return np.dtype(np.float32)


def resize(
    image: np.ndarray, size: tuple[int, int], interpolation: Any = INTER_LINEAR, hw_axis: int = 0
) -> np.ndarray:
    """Resize to ``size = (height, width)``; the output keeps the input's dtype."""
    th, tw = int(size[0]), int(size[1])
    if th <= 0 or tw <= 0:
        raise ValueError(f"output size must be positive, got {(th, tw)}")
    h, w = image.shape[hw_axis], image.shape[hw_axis + 1]
    if (h, w) == (th, tw):
        return image
    code = interp_code(interpolation)
    if code == INTER_NEAREST:
        out = image.take(_nearest_index(h, th), axis=hw_axis)
        return out.take(_nearest_index(w, tw), axis=hw_axis + 1)
    work = _work_dtype(image.dtype)
    img = image.astype(work, copy=False)
    trailing_y = (1,) * (image.ndim - hw_axis - 1)
    trailing_x = (1,) * (image.ndim - hw_axis - 2)
    y0, y1, wy = _linear_coeffs(h, th)
    wy1 = wy.astype(work).reshape((th,) + trailing_y)
    rows = img.take(y0, axis=hw_axis) * (1 - wy1) + img.take(y1, axis=hw_axis) * wy1
    x0, x1, wx = _linear_coeffs(w, tw)
    wx1 = wx.astype(work).reshape((tw,) + trailing_x)
    out = rows.take(x0, axis=hw_axis + 1) * (1 - wx1) + rows.take(x1, axis=hw_axis + 1) * wx1
    if np.issubdtype(image.dtype, np.integer):
        info = np.iinfo(image.dtype)
        out = np.clip(np.floor(out + 0.5), info.min, info.max)
    return out.astype(image.dtype, copy=False)
