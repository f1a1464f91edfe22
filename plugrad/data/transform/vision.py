"""Concrete vision transforms on HxWxC NumPy images (MegEngine semantics)."""

from __future__ import annotations

import collections.abc
from typing import Any, Sequence

import numpy as np

from . import functional as F
from .vision_base import VisionTransform

__all__ = [
    "Normalize",
    "Pad",
    "ToMode",
    "RandomCrop",
    "RandomHorizontalFlip",
    "RandomVerticalFlip",
    "Resize",
    "CenterCrop",
]

Size = int | tuple[int, int]


def _pair(size: Size, what: str) -> tuple[int, int]:
    if isinstance(size, (int, np.integer)) and not isinstance(size, bool):
        pair = (int(size), int(size))
    elif isinstance(size, collections.abc.Sequence) and len(size) == 2:
        pair = (int(size[0]), int(size[1]))
    else:
        raise ValueError(
            f"{what} should be an int or a (height, width) pair, but got {size}"
        )
    if min(pair) <= 0:
        raise ValueError(f"{what} should be positive, but got {size}")
    return pair


class Normalize(VisionTransform):
    """``(image - mean) / std`` per channel, always producing float32.

    The arithmetic is float32, as ``(image - float32(mean)) / float32(std)``. A uint8 image
    is mapped through a precomputed 256-entry table holding exactly those values, which
    writes the float32 output in a single pass.
    """

    def __init__(self, mean: Any = 0.0, std: Any = 1.0, *, order: Sequence[str] | None = None):
        super().__init__(order)
        self.mean = np.array(mean, dtype=np.float32)
        self.std = np.array(std, dtype=np.float32)
        if self.mean.ndim > 1 or self.std.ndim > 1:
            raise ValueError("mean and std should be scalars or one value per channel")
        table = (
            np.arange(256, dtype=np.uint8)[:, None] - self.mean.reshape(-1)
        ) / self.std.reshape(-1)
        self._lut = np.ascontiguousarray(table, dtype=np.float32)  # (256, channels or 1)
        self._lut1 = np.ascontiguousarray(self._lut[:, 0]) if self._lut.shape[1] == 1 else None
        self._channels = np.arange(self._lut.shape[1])

    def _apply_image(self, image: np.ndarray) -> np.ndarray:
        if image.dtype == np.uint8:
            if self._lut1 is not None:
                return self._lut1.take(image)
            return self._lut[image, self._channels]
        out = np.subtract(image, self.mean, dtype=np.float32)
        np.divide(out, self.std, out=out)
        return out

    def _apply_image_batch(self, images: np.ndarray) -> np.ndarray:
        return self._apply_image(images)

    def _apply_coords(self, coords: np.ndarray) -> np.ndarray:
        return coords

    def _apply_mask(self, mask: np.ndarray) -> np.ndarray:
        return mask


class Pad(VisionTransform):
    """Constant padding. ``size``: an int for all sides, ``(top, bottom, left, right)``,
    or a pair ``(bottom, right)`` that pads only the bottom and right edges.
    ``value`` may be a scalar or one value per channel; masks are padded with
    ``mask_value``."""

    def __init__(
        self,
        size: int | Sequence[int] = 0,
        value: Any = 0,
        mask_value: int = 0,
        *,
        order: Sequence[str] | None = None,
    ):
        super().__init__(order)
        sizes: tuple[int, ...]
        if isinstance(size, (int, np.integer)) and not isinstance(size, bool):
            sizes = (int(size),) * 4
        elif isinstance(size, collections.abc.Sequence) and len(size) == 2:
            sizes = (0, int(size[0]), 0, int(size[1]))
        elif isinstance(size, collections.abc.Sequence) and len(size) == 4:
            sizes = tuple(int(s) for s in size)
        else:
            raise ValueError(
                "size should be a list/tuple which contains (top, down, left, right) four pad "
                f"sizes, or (down, right) two pad sizes, but got size={size}"
            )
        if min(sizes) < 0:
            raise ValueError(f"pad sizes should be non-negative, but got size={size}")
        if not isinstance(mask_value, (int, np.integer)) or isinstance(mask_value, bool):
            raise ValueError(
                f"mask_value should be a positive integer, but got mask_value={mask_value}"
            )
        self.size = sizes
        self.value = value
        self._value_key = F._as_key(value)  # hashable form, so the fill value is cached
        self.mask_value = int(mask_value)

    def _apply_image(self, image: np.ndarray) -> np.ndarray:
        return F.pad(image, self.size, self._value_key)

    def _apply_image_batch(self, images: np.ndarray) -> np.ndarray:
        return F.pad(images, self.size, self._value_key, hw_axis=1)

    def _apply_coords(self, coords: np.ndarray) -> np.ndarray:
        coords = np.array(coords, copy=True)
        coords[:, 0] += self.size[2]
        coords[:, 1] += self.size[0]
        return coords

    def _apply_mask(self, mask: np.ndarray) -> np.ndarray:
        return F.pad(mask, self.size, self.mask_value)


class ToMode(VisionTransform):
    """Converts HxWxC images (and masks) to ``"CHW"``; ``"HWC"`` leaves them as they are."""

    def __init__(self, mode: str = "CHW", *, order: Sequence[str] | None = None):
        super().__init__(order)
        if mode not in ("CHW", "HWC"):
            raise ValueError(f"unsupported mode: {mode}")
        self.mode = mode

    def _apply_image(self, image: np.ndarray) -> np.ndarray:
        if self.mode == "HWC":
            return image
        if image.ndim == 2:
            return image[None]
        return np.ascontiguousarray(image.transpose(2, 0, 1))

    def _apply_image_batch(self, images: np.ndarray) -> np.ndarray:
        if self.mode == "HWC":
            return images
        if images.ndim == 3:
            return images[:, None]
        return np.ascontiguousarray(images.transpose(0, 3, 1, 2))

    def _apply_coords(self, coords: np.ndarray) -> np.ndarray:
        return coords

    _apply_mask = _apply_image


class RandomCrop(VisionTransform):
    """Crops a random ``output_size`` window after optional padding.

    Images smaller than the window are first padded at the bottom/right. The offsets come
    from NumPy's global RNG (seeded per DataLoader worker)."""

    def __init__(
        self,
        output_size: Size,
        padding_size: int | Sequence[int] = 0,
        padding_value: Any = (0, 0, 0),
        padding_maskvalue: int = 0,
        *,
        order: Sequence[str] | None = None,
    ):
        super().__init__(order)
        self.output_size = _pair(output_size, "output_size")
        self.padding_value = padding_value
        self.padding_maskvalue = padding_maskvalue
        self.pad = Pad(padding_size, padding_value, padding_maskvalue, order=self.order)

    def apply(self, input: Any) -> Any:
        if any(self.pad.size):
            self.pad.order = self.order
            input = self.pad.apply(input)
        h, w = self._get_image(input).shape[:2]
        th, tw = self.output_size
        self._h, self._w = max(h, th), max(w, tw)
        self._x = np.random.randint(0, self._w - tw + 1)
        self._y = np.random.randint(0, self._h - th + 1)
        return super().apply(input)

    def _fit(self, image: np.ndarray, value: Any) -> np.ndarray:
        h, w = image.shape[:2]
        if h < self._h or w < self._w:
            image = F.pad(image, (0, self._h - h, 0, self._w - w), value)
        th, tw = self.output_size
        return image[self._y : self._y + th, self._x : self._x + tw]

    def _apply_image(self, image: np.ndarray) -> np.ndarray:
        return self._fit(image, self.padding_value)

    def _apply_coords(self, coords: np.ndarray) -> np.ndarray:
        coords = np.array(coords, copy=True)
        coords[:, 0] -= self._x
        coords[:, 1] -= self._y
        return coords

    def _apply_mask(self, mask: np.ndarray) -> np.ndarray:
        return self._fit(mask, self.padding_maskvalue)


class _RandomFlip(VisionTransform):
    _axis = 1

    def __init__(self, prob: float = 0.5, *, order: Sequence[str] | None = None):
        super().__init__(order)
        if not 0.0 <= float(prob) <= 1.0:
            raise ValueError(f"prob should be in [0, 1], but got prob={prob}")
        self.prob = float(prob)

    def apply(self, input: Any) -> Any:
        self._flipped = np.random.random() < self.prob
        self._extent = self._get_image(input).shape[self._axis]
        return super().apply(input)

    def _apply_image(self, image: np.ndarray) -> np.ndarray:
        return F.flip(image, self._axis) if self._flipped else image

    def _apply_coords(self, coords: np.ndarray) -> np.ndarray:
        if self._flipped:
            coords = np.array(coords, copy=True)
            coord = 0 if self._axis == 1 else 1  # x for a horizontal flip, y for vertical
            coords[:, coord] = self._extent - coords[:, coord]
        return coords

    _apply_mask = _apply_image


class RandomHorizontalFlip(_RandomFlip):
    """Mirrors left-right with probability ``prob`` (returns a view, no copy)."""

    _axis = 1


class RandomVerticalFlip(_RandomFlip):
    """Mirrors top-bottom with probability ``prob`` (returns a view, no copy)."""

    _axis = 0


class Resize(VisionTransform):
    """Resizes to ``output_size`` = ``(height, width)``, or, for an int, scales the shorter
    side to it keeping the aspect ratio. ``interpolation`` is ``INTER_NEAREST`` (0),
    ``INTER_LINEAR`` (1, default) or the names ``"nearest"``/``"bilinear"``; see
    :mod:`plugrad.data.transform.functional` for the exact (OpenCV) conventions.
    Masks always use nearest."""

    def __init__(
        self,
        output_size: Size,
        interpolation: Any = F.INTER_LINEAR,
        *,
        order: Sequence[str] | None = None,
    ):
        super().__init__(order)
        if isinstance(output_size, (int, np.integer)) and not isinstance(output_size, bool):
            if output_size <= 0:
                raise ValueError(f"output_size should be positive, but got {output_size}")
            self.output_size: Size = int(output_size)
        else:
            self.output_size = _pair(output_size, "output_size")
        self.interpolation = F.interp_code(interpolation)

    def _get_shape(self, h: int, w: int) -> tuple[int, int]:
        size = self.output_size
        if not isinstance(size, int):
            return size
        if min(h, w) == size:
            return h, w
        if h < w:
            return size, int(size * w / h)
        return int(size * h / w), size

    def apply(self, input: Any) -> Any:
        self._h, self._w = self._get_image(input).shape[:2]
        self._shape = self._get_shape(self._h, self._w)
        return super().apply(input)

    def _apply_image(self, image: np.ndarray) -> np.ndarray:
        return F.resize(image, self._shape, self.interpolation)

    def _apply_image_batch(self, images: np.ndarray) -> np.ndarray:
        shape = self._get_shape(images.shape[1], images.shape[2])
        return F.resize(images, shape, self.interpolation, hw_axis=1)

    def _apply_coords(self, coords: np.ndarray) -> np.ndarray:
        th, tw = self._shape
        coords = np.array(coords, dtype=np.float64, copy=True)
        coords[:, 0] *= tw / self._w
        coords[:, 1] *= th / self._h
        return coords

    def _apply_mask(self, mask: np.ndarray) -> np.ndarray:
        return F.resize(mask, self._shape, F.INTER_NEAREST)


class CenterCrop(VisionTransform):
    """Crops the central ``output_size`` window (offsets rounded as Python's ``round``)."""

    def __init__(self, output_size: Size, *, order: Sequence[str] | None = None):
        super().__init__(order)
        self.output_size = _pair(output_size, "output_size")

    def _offsets(self, h: int, w: int) -> tuple[int, int]:
        th, tw = self.output_size
        if th > h or tw > w:
            raise ValueError(
                f"CenterCrop: output size {(th, tw)} is larger than the image size {(h, w)}"
            )
        return int(round((h - th) / 2.0)), int(round((w - tw) / 2.0))

    def apply(self, input: Any) -> Any:
        h, w = self._get_image(input).shape[:2]
        self._y, self._x = self._offsets(h, w)
        return super().apply(input)

    def _apply_image(self, image: np.ndarray) -> np.ndarray:
        th, tw = self.output_size
        return image[self._y : self._y + th, self._x : self._x + tw]

    def _apply_image_batch(self, images: np.ndarray) -> np.ndarray:
        y, x = self._offsets(images.shape[1], images.shape[2])
        th, tw = self.output_size
        return images[:, y : y + th, x : x + tw]

    def _apply_coords(self, coords: np.ndarray) -> np.ndarray:
        coords = np.array(coords, copy=True)
        coords[:, 0] -= self._x
        coords[:, 1] -= self._y
        return coords

    _apply_mask = _apply_image
