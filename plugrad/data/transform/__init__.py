"""Data transforms on NumPy samples (``import plugrad.data.transform as T``)."""

from __future__ import annotations

from . import functional
from .functional import INTER_LINEAR, INTER_NEAREST
from .color import ColorJitter, Lighting
from .meta_transform import PseudoTransform, Transform
from .resized_crop import RandomResizedCrop
from .vision import (
    CenterCrop,
    Normalize,
    Pad,
    RandomCrop,
    RandomHorizontalFlip,
    RandomVerticalFlip,
    Resize,
    ToMode,
)
from .vision_base import Compose, VisionTransform

__all__ = [
    "Transform",
    "PseudoTransform",
    "VisionTransform",
    "Compose",
    "Normalize",
    "Pad",
    "ToMode",
    "RandomCrop",
    "RandomHorizontalFlip",
    "RandomVerticalFlip",
    "Resize",
    "CenterCrop",
    "RandomResizedCrop",
    "ColorJitter",
    "Lighting",
    "INTER_NEAREST",
    "INTER_LINEAR",
    "functional",
]
