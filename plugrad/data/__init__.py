"""Data loading for plugrad: datasets, samplers, transforms, collation and the DataLoader.

Works on NumPy arrays (like MegEngine's ``megengine.data``): datasets may hold plugrad
Tensors, and the DataLoader yields batches of NumPy arrays that the caller wraps in
``plugrad.Tensor``.
"""

from __future__ import annotations

from . import dataset, transform
from .collator import Collator
from .dataloader import DataLoader
from .dataset import MNIST, ArrayDataset, ConcatDataset, Dataset, FashionMNIST, StreamDataset
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
    "Dataset",
    "StreamDataset",
    "ArrayDataset",
    "ConcatDataset",
    "MNIST",
    "FashionMNIST",
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
