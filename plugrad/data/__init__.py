"""Data loading for plugrad: datasets, samplers, transforms, collation and the DataLoader.

Works purely on NumPy arrays (like MegEngine's ``megengine.data``): the DataLoader yields
batches of NumPy arrays that the caller wraps in ``plugrad.Tensor``.
"""

from __future__ import annotations

from . import dataset, transform
from .collator import Collator
from .dataloader import DataLoader
from .sampler import (
    Infinite,
    MapSampler,
    RandomSampler,
    ReplacementSampler,
    Sampler,
    SequentialSampler,
    StreamSampler,
)

__all__ = [
    "DataLoader",
    "Collator",
    "Sampler",
    "MapSampler",
    "StreamSampler",
    "SequentialSampler",
    "RandomSampler",
    "ReplacementSampler",
    "Infinite",
    "dataset",
    "transform",
]
