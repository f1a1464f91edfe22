"""Datasets: the abstract bases, in-memory array datasets and MNIST-like vision datasets."""

from __future__ import annotations

from .download import DownloadError
from .idx import IDXFormatError
from .meta_dataset import ArrayDataset, ConcatDataset, Dataset, StreamDataset
from .mnist import MNIST, FashionMNIST

__all__ = [
    "Dataset",
    "StreamDataset",
    "ArrayDataset",
    "ConcatDataset",
    "MNIST",
    "FashionMNIST",
    "IDXFormatError",
    "DownloadError",
]
