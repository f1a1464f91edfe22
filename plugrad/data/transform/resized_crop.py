"""RandomResizedCrop: a random window of random area and aspect ratio, resized to one size."""

from __future__ import annotations

import math
from typing import Any, Optional, Sequence, Tuple

import numpy as np

from . import functional as F
from .vision import Size, _pair
from .vision_base import VisionTransform

__all__ = ["RandomResizedCrop"]


def _range(name: str, value: Any, positive: bool) -> Tuple[float, float]:
    try:
        low, high = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError("RandomResizedCrop: {} should be a (low, high) pair, but got {!r}"
                         .format(name, value)) from None
    if not (0 < low if positive else 0 <= low) or not low <= high:
        bound = "0 < low" if positive else "0 <= low"
        raise ValueError("RandomResizedCrop: {} should satisfy {} <= high, but got {!r}"
                         .format(name, bound, value))
    return low, high


class RandomResizedCrop(VisionTransform):
    """Crops a window covering a random share of the image, then resizes it to ``output_size``.

    The share of the area is drawn from ``U[scale_range]`` and the aspect ratio (width / height)
    log-uniformly from ``ratio_range``; up to ten draws look for a window that fits, after which
    the largest centred window with a ratio inside the range is used.

    Args:
        output_size: an int or a (height, width) pair.
        scale_range: bounds of the cropped share of the area (above 1 only the fallback fits).
        ratio_range: bounds of the window's aspect ratio.
        interpolation: as :class:`Resize` (masks always use nearest).
    """

    def __init__(self, output_size: Size, scale_range: Sequence[float] = (0.08, 1.0),
                 ratio_range: Sequence[float] = (3.0 / 4, 4.0 / 3),
                 interpolation: Any = F.INTER_LINEAR, *, order: Optional[Sequence[str]] = None):
        super().__init__(order)
        self.output_size = _pair(output_size, "output_size")
        self.scale_range = _range("scale_range", scale_range, positive=False)
        self.ratio_range = _range("ratio_range", ratio_range, positive=True)
        self.interpolation = F.interp_code(interpolation)

    def _window(self, height: int, width: int) -> Tuple[int, int, int, int]:
        """``(x, y, w, h)`` of the window to crop."""
        area = height * width
        log_ratio = (math.log(self.ratio_range[0]), math.log(self.ratio_range[1]))
        for _ in range(10):
            target = np.random.uniform(*self.scale_range) * area
            ratio = math.exp(np.random.uniform(*log_ratio))
            w = int(round(math.sqrt(target * ratio)))
            h = int(round(math.sqrt(target / ratio)))
            if 0 < w <= width and 0 < h <= height:
                x = np.random.randint(0, width - w + 1)
                return x, np.random.randint(0, height - h + 1), w, h
        ratio = width / height
        if ratio < self.ratio_range[0]:
            w, h = width, int(round(width / self.ratio_range[0]))
        elif ratio > self.ratio_range[1]:
            w, h = int(round(height * self.ratio_range[1])), height
        else:
            w, h = width, height
        return (width - w) // 2, (height - h) // 2, w, h

    def apply(self, input: Any) -> Any:
        height, width = self._get_image(input).shape[:2]
        self._x, self._y, self._w, self._h = self._window(height, width)
        return super().apply(input)

    def _crop(self, image: np.ndarray) -> np.ndarray:
        return image[self._y:self._y + self._h, self._x:self._x + self._w]

    def _apply_image(self, image: np.ndarray) -> np.ndarray:
        return F.resize(self._crop(image), self.output_size, self.interpolation)

    def _apply_coords(self, coords: np.ndarray) -> np.ndarray:
        th, tw = self.output_size
        coords = np.array(coords, dtype=np.float64, copy=True)
        coords[:, 0] = (coords[:, 0] - self._x) * (tw / self._w)
        coords[:, 1] = (coords[:, 1] - self._y) * (th / self._h)
        return coords

    def _apply_mask(self, mask: np.ndarray) -> np.ndarray:
        return F.resize(self._crop(mask), self.output_size, F.INTER_NEAREST)
