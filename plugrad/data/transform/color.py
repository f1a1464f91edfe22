"""Colour augmentation on HxWxC images in OpenCV's BGR order: ColorJitter and Lighting.

Images are uint8 or float with values in [0, 255], as the other transforms take them. The
arithmetic follows MegEngine 1.13's: float32, clipped to [0, 255], then cast back to the
image's dtype (which truncates fractions for integer images). Random factors come from NumPy's
global RNG (seeded per DataLoader worker), drawn in MegEngine's order, so a seed gives the
factors MegEngine draws from it.
"""

from __future__ import annotations

from typing import Any, List, Optional, Sequence, Tuple

import numpy as np

from .vision_base import VisionTransform

__all__ = ["ColorJitter", "Lighting"]

# BT.601 luma weights for the B, G and R channels (OpenCV's BGR2GRAY).
_GRAY = np.array([0.114, 0.587, 0.299], dtype=np.float32)


def _finish(out: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """Clip to [0, 255] and cast to ``dtype`` (truncating fractions, as NumPy's astype)."""
    return np.clip(out, 0.0, 255.0).astype(dtype, copy=False)


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
    mean = _gray(work).mean()
    return _finish(work * np.float32(factor) + mean * np.float32(1.0 - factor), image.dtype)


def adjust_saturation(image: np.ndarray, factor: float) -> np.ndarray:
    """Blend with the per-pixel grey: ``image * f + gray * (1 - f)``."""
    work = image.astype(np.float32)
    return _finish(work * np.float32(factor) + _gray(work) * np.float32(1.0 - factor),
                   image.dtype)


# OpenCV's 8-bit BGR <-> HSV_FULL conversion (hue in 256 steps), reproduced in NumPy: integer
# tables with 12 fractional bits one way, float32 sectors and round-to-nearest the other way.
_HSV_SHIFT = 12
_STEPS = np.arange(1, 256, dtype=np.float64)
_SAT_DIV = np.concatenate([[0], np.rint((255 << _HSV_SHIFT) / _STEPS)]).astype(np.int64)
_HUE_DIV = np.concatenate([[0], np.rint((256 << _HSV_SHIFT) / (6 * _STEPS))]).astype(np.int64)
# which of (v, v (1 - s), v (1 - s f), v (1 - s (1 - f))) each of B, G, R takes, per sector
_SECTORS = np.array([[1, 3, 0], [1, 0, 2], [3, 0, 1], [0, 2, 1], [0, 1, 3], [2, 1, 0]])


def _bgr_to_hsv(image: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """uint8 BGR -> (h, s, v), each an int64 array in [0, 255] (OpenCV's BGR2HSV_FULL)."""
    b, g, r = (image[..., i].astype(np.int64) for i in range(3))
    v = np.maximum(np.maximum(b, g), r)
    diff = v - np.minimum(np.minimum(b, g), r)
    half = 1 << (_HSV_SHIFT - 1)
    s = (diff * _SAT_DIV[v] + half) >> _HSV_SHIFT
    h = np.where(v == r, g - b, np.where(v == g, b - r + 2 * diff, r - g + 4 * diff))
    h = (h * _HUE_DIV[diff] + half) >> _HSV_SHIFT
    return np.clip(np.where(h < 0, h + 256, h), 0, 255), s, v


def _hsv_to_bgr(h: np.ndarray, s: np.ndarray, v: np.ndarray) -> np.ndarray:
    """(h, s, v) in [0, 255] -> uint8 BGR (OpenCV's HSV2BGR_FULL)."""
    hue = h.astype(np.float32) * np.float32(6.0 / 255)  # OpenCV reads 255 as the full turn here
    sat = s.astype(np.float32) * np.float32(1.0 / 255)
    val = v.astype(np.float32) * np.float32(1.0 / 255)
    sector = np.floor(hue)
    frac = hue - sector
    full = sector >= 6  # hue 255 is a whole turn: back to sector 0
    sector, frac = np.where(full, 0, sector), np.where(full, np.float32(0), frac)
    one = np.float32(1.0)
    table = np.stack([val, val * (one - sat), val * (one - sat * frac),
                      val * (one - sat * (one - frac))], axis=-1)
    picks = _SECTORS[sector.astype(np.intp)]
    out = np.take_along_axis(table, picks, axis=-1)
    out = np.where((s == 0)[..., None], val[..., None], out)
    return np.clip(np.rint(out * np.float32(255.0)), 0, 255).astype(np.uint8)


def adjust_hue(image: np.ndarray, alpha: float) -> np.ndarray:
    """Turn every pixel's hue by ``alpha`` (in [-0.5, 0.5] turns), as MegEngine does it.

    The image is cast to uint8 and converted to 8-bit HSV with a 256-step hue, the hue gets
    ``uint8(alpha * 255)`` added modulo 256 (whole steps of 1/256 turn), and the result is
    converted back and cast to the image's dtype: OpenCV's arithmetic, without OpenCV.
    """
    if image.shape[-1] != 3 or alpha == 0:
        return image
    h, s, v = _bgr_to_hsv(image.astype(np.uint8))
    h = (h + int(alpha * 255)) % 256
    return _hsv_to_bgr(h, s, v).astype(image.dtype, copy=False)


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
        hue: the hue turns by ``alpha`` drawn from ``U[-hue, hue]`` (``hue <= 0.5``), in
            whole 1/256 turns of OpenCV's 8-bit HSV (see :func:`adjust_hue`).
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
        # MegEngine's order of draws: the permutation of the active steps, then each step's
        # factor as it is applied.
        active = [(fn, bounds) for fn, bounds, value in self._ranges if value]
        self._steps: List[Tuple[Any, float]] = []
        for i in np.random.permutation(len(active)):
            fn, bounds = active[i]
            factor = float(np.random.uniform(*bounds))
            self._steps.append((fn, factor))
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
    """AlexNet's PCA lighting noise: adds ``eigvec @ (alpha * eigval)``, alpha ~ N(0, 255 scale).

    The principal components are ImageNet's, with the eigenvector rows in B, G, R order to
    match the image's channels, as in MegEngine.
    """

    _EIGVAL = np.array([0.2175, 0.0188, 0.0045])
    _EIGVEC = np.array([[-0.5836, -0.6948, 0.4203],
                        [-0.5808, -0.0045, -0.8140],
                        [-0.5675, 0.7192, 0.4009]])

    def __init__(self, scale: float, *, order: Optional[Sequence[str]] = None):
        super().__init__(order)
        if isinstance(scale, bool) or not isinstance(scale, (int, float)) or scale < 0:
            raise ValueError("Lighting: scale must be a non-negative number, but got "
                             "scale={!r}".format(scale))
        self.scale = scale

    def _apply_image(self, image: np.ndarray) -> np.ndarray:
        if not self.scale:
            return image
        if image.shape[-1] != 3:
            raise ValueError("Lighting: expected an HxWx3 BGR image, but got shape {}"
                             .format(image.shape))
        alpha = np.random.normal(scale=self.scale * 255, size=3)
        return _finish(image.astype(np.float32) + self._EIGVEC.dot(alpha * self._EIGVAL),
                       image.dtype)

    def _apply_coords(self, coords: np.ndarray) -> np.ndarray:
        return coords

    def _apply_mask(self, mask: np.ndarray) -> np.ndarray:
        return mask
