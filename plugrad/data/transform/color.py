"""Colour augmentation on HxWxC images in OpenCV's BGR order: ColorJitter and Lighting.

Images are uint8 or float with values in [0, 255], as the other transforms take them. The
arithmetic is float32; results are clipped to [0, 255] and, for integer images, rounded half
up. Random factors come from NumPy's global RNG (seeded per DataLoader worker).
"""

from __future__ import annotations

from typing import Any, List, Optional, Sequence, Tuple

import numpy as np

from .vision_base import VisionTransform

__all__ = ["ColorJitter", "Lighting"]

# BT.601 luma weights for the B, G and R channels (OpenCV's BGR2GRAY).
_GRAY = np.array([0.114, 0.587, 0.299], dtype=np.float32)


def _finish(out: np.ndarray, dtype: np.dtype) -> np.ndarray:
    out = np.clip(out, 0.0, 255.0)
    if np.issubdtype(dtype, np.integer):
        out = np.floor(out + 0.5)
    return out.astype(dtype, copy=False)


def _gray(image: np.ndarray) -> np.ndarray:
    """Per-pixel grey level as HxWx1 (a one-channel image is its own grey)."""
    if image.shape[-1] == 1:
        return image
    return (image @ _GRAY)[..., None]


def adjust_brightness(image: np.ndarray, factor: float) -> np.ndarray:
    """``image * factor``."""
    return _finish(image.astype(np.float32) * np.float32(factor), image.dtype)


def adjust_contrast(image: np.ndarray, factor: float) -> np.ndarray:
    """Blend with the image's mean grey level: ``image * f + mean(gray) * (1 - f)``."""
    work = image.astype(np.float32)
    mean = _gray(work).mean(dtype=np.float64)
    return _finish(work * np.float32(factor) + np.float32(mean * (1.0 - factor)), image.dtype)


def adjust_saturation(image: np.ndarray, factor: float) -> np.ndarray:
    """Blend with the per-pixel grey: ``image * f + gray * (1 - f)``."""
    work = image.astype(np.float32)
    return _finish(work * np.float32(factor) + _gray(work) * np.float32(1.0 - factor),
                   image.dtype)


def adjust_hue(image: np.ndarray, shift: float) -> np.ndarray:
    """Rotate every pixel's hue by ``shift`` turns (``shift`` in [-0.5, 0.5]); grey stays grey."""
    if image.shape[-1] != 3 or shift == 0:
        return image
    work = image.astype(np.float32) / np.float32(255.0)
    b, g, r = work[..., 0], work[..., 1], work[..., 2]
    high, low = work.max(axis=-1), work.min(axis=-1)
    span = high - low
    safe = np.where(span > 0, span, 1.0)
    hue = np.where(high == r, ((g - b) / safe) % 6.0,
                   np.where(high == g, (b - r) / safe + 2.0, (r - g) / safe + 4.0)) / 6.0
    hue = (hue + np.float32(shift)) % 1.0
    # Back from (hue, span, high): each channel's distance along the hexagon, as in HSV -> RGB.
    def channel(n: float) -> np.ndarray:
        k = (n + hue * 6.0) % 6.0
        return high - span * np.clip(np.minimum(k, 4.0 - k), 0.0, 1.0)

    out = np.stack([channel(1.0), channel(3.0), channel(5.0)], axis=-1)  # B, G, R
    return _finish(out * np.float32(255.0), image.dtype)


def _factor_range(name: str, value: float, centre: float, limit: Optional[float]
                  ) -> Tuple[float, float]:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0 \
            or (limit is not None and value > limit):
        bound = "" if limit is None else " and at most {}".format(limit)
        raise ValueError("ColorJitter: {} must be a non-negative number{}, but got {}={!r}"
                         .format(name, bound, name, value))
    return (max(0.0, centre - value), centre + value) if centre else (-value, value)


class ColorJitter(VisionTransform):
    """Random brightness, contrast, saturation and hue changes, applied in a random order.

    Args:
        brightness, contrast, saturation: each factor is drawn from
            ``U[max(0, 1 - v), 1 + v]``; 0 leaves that property alone.
        hue: the hue rotates by a turn fraction drawn from ``U[-hue, hue]``, ``hue <= 0.5``.
    """

    def __init__(self, brightness: float = 0, contrast: float = 0, saturation: float = 0,
                 hue: float = 0, *, order: Optional[Sequence[str]] = None):
        super().__init__(order)
        self._ranges = [
            (adjust_brightness, _factor_range("brightness", brightness, 1.0, None), brightness),
            (adjust_contrast, _factor_range("contrast", contrast, 1.0, None), contrast),
            (adjust_saturation, _factor_range("saturation", saturation, 1.0, None), saturation),
            (adjust_hue, _factor_range("hue", hue, 0.0, 0.5), hue),
        ]
        self.brightness, self.contrast, self.saturation, self.hue = (
            brightness, contrast, saturation, hue)

    def apply(self, input: Any) -> Any:
        active = [(fn, bounds) for fn, bounds, value in self._ranges if value]
        self._steps: List[Tuple[Any, float]] = [
            (fn, float(np.random.uniform(*bounds))) for fn, bounds in active]
        order = np.random.permutation(len(self._steps))
        self._steps = [self._steps[i] for i in order]
        return super().apply(input)

    def _apply_image(self, image: np.ndarray) -> np.ndarray:
        for fn, factor in self._steps:
            image = fn(image, factor)
        return image

    def _apply_coords(self, coords: np.ndarray) -> np.ndarray:
        return coords

    def _apply_mask(self, mask: np.ndarray) -> np.ndarray:
        return mask


class Lighting(VisionTransform):
    """AlexNet's PCA lighting noise: adds ``eigvec @ (alpha * eigval) * 255``, alpha ~ N(0, scale).

    The principal components are ImageNet's RGB ones; the shift is added to the image's B, G, R
    channels in that order (reversed from RGB).
    """

    _EIGVAL = np.array([0.2175, 0.0188, 0.0045])
    _EIGVEC = np.array([[-0.5675, 0.7192, 0.4009],
                        [-0.5808, -0.0045, -0.8140],
                        [-0.5836, -0.6948, 0.4203]])

    def __init__(self, scale: float, *, order: Optional[Sequence[str]] = None):
        super().__init__(order)
        if isinstance(scale, bool) or not isinstance(scale, (int, float)) or scale < 0:
            raise ValueError("Lighting: scale must be a non-negative number, but got "
                             "scale={!r}".format(scale))
        self.scale = float(scale)

    def apply(self, input: Any) -> Any:
        alpha = np.random.normal(0.0, self.scale, size=3) if self.scale else np.zeros(3)
        rgb = self._EIGVEC @ (alpha * self._EIGVAL) * 255.0
        self._shift = rgb[::-1].astype(np.float32)  # B, G, R
        return super().apply(input)

    def _apply_image(self, image: np.ndarray) -> np.ndarray:
        if not self.scale:
            return image
        if image.shape[-1] != 3:
            raise ValueError("Lighting: expected an HxWx3 BGR image, but got shape {}"
                             .format(image.shape))
        return _finish(image.astype(np.float32) + self._shift, image.dtype)

    def _apply_coords(self, coords: np.ndarray) -> np.ndarray:
        return coords

    def _apply_mask(self, mask: np.ndarray) -> np.ndarray:
        return mask
