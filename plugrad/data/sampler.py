"""Samplers decide which dataset indices make up each batch (MegEngine semantics).

A map sampler yields batches as lists of indices; ``len(sampler)`` is the number of
batches it yields per epoch. For data-parallel training, ``world_size``/``rank`` give each
rank a disjoint, equally sized share of every epoch (by default, this process's share when a
plugrad.distributed process group exists): the index list is first padded by
repeating its head until it divides evenly, then rank ``r`` takes every ``world_size``-th
index starting at ``r``.
"""

from __future__ import annotations

import collections.abc
import math
from abc import ABC, abstractmethod
from typing import Any, Iterator, Sequence

import numpy as np

__all__ = [
    "Sampler",
    "MapSampler",
    "StreamSampler",
    "SequentialSampler",
    "RandomSampler",
    "ReplacementSampler",
    "Infinite",
]


def _is_positive_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool) and bool(value > 0)


def _process_group() -> tuple[int, int]:
    """(world_size, rank) of the data-parallel process group; (1, 0) outside one."""
    from plugrad.distributed.group import get_rank, get_world_size

    return get_world_size(), get_rank()


class Sampler(ABC):
    """Base class of all samplers: an iterable of batches of indices."""

    @abstractmethod
    def __iter__(self) -> Iterator[Any]: ...


class MapSampler(Sampler):
    """Base class for samplers over map-style datasets.

    Subclasses implement :meth:`sample`, which returns the full (unsplit) index list of one
    epoch; this class splits it across ranks and cuts it into batches.
    """

    def __init__(
        self,
        dataset: Any,
        batch_size: int = 1,
        drop_last: bool = False,
        num_samples: int | None = None,
        world_size: int | None = None,
        rank: int | None = None,
        seed: int | None = None,
    ) -> None:
        if not _is_positive_int(batch_size):
            raise ValueError(
                f"batch_size should be a positive integer value, but got batch_size={batch_size}"
            )
        if not isinstance(drop_last, bool):
            raise ValueError(
                f"drop_last should be a boolean value, but got drop_last={drop_last}"
            )
        if num_samples is not None and not _is_positive_int(num_samples):
            raise ValueError(
                f"num_samples should be a positive integer value, but got num_samples={num_samples}"
            )
        if world_size is None:
            world_size = _process_group()[0]
        if not _is_positive_int(world_size):
            raise ValueError(
                f"world_size should be a positive integer value, but got world_size={world_size}"
            )
        if rank is None:
            rank = _process_group()[1]
        if (
            not isinstance(rank, (int, np.integer))
            or isinstance(rank, bool)
            or not 0 <= rank < world_size
        ):
            raise ValueError(
                f"rank should be an integer in [0, world_size={world_size}), but got rank={rank}"
            )
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.drop_last = drop_last
        self.world_size = int(world_size)
        self.rank = int(rank)
        if num_samples is None:
            num_samples = len(dataset)
        self.total_samples = int(num_samples)
        # Samples this rank sees per epoch (the padded share).
        self.num_samples = int(math.ceil(self.total_samples / self.world_size))
        # Every rank must draw the same permutation, so a missing seed becomes 0 there; in one
        # process it comes from NumPy's global generator, so np.random.seed makes runs repeat.
        if seed is None:
            seed = 0 if self.world_size > 1 else int(np.random.randint(0, 2**31 - 1))
        self.seed = seed
        self.rng = np.random.RandomState(seed)

    def __iter__(self) -> Iterator[list[Any]]:
        return self.batch()

    def __len__(self) -> int:
        if self.drop_last:
            return self.num_samples // self.batch_size
        return int(math.ceil(self.num_samples / self.batch_size))

    def sample(self) -> Sequence[Any]:
        """Return this epoch's full index list, before splitting across ranks."""
        raise NotImplementedError

    def scatter(self, indices: list[Any]) -> list[Any]:
        """Pick this rank's share; override for a custom rank assignment."""
        total_size = self.num_samples * self.world_size
        if not indices:
            return []
        while len(indices) < total_size:  # pad by repeating the head, as MegEngine does
            indices = indices + indices[: total_size - len(indices)]
        indices = indices[:total_size]
        return indices[self.rank : total_size : self.world_size]

    def batch(self) -> Iterator[list[Any]]:
        """Cut this rank's indices into batches of ``batch_size``."""
        indices = list(self.sample())
        if self.world_size > 1:
            indices = self.scatter(indices)
        step = self.batch_size
        batches = [indices[i : i + step] for i in range(0, len(indices), step)]
        if self.drop_last and batches and len(batches[-1]) < step:
            batches.pop()
        return iter(batches)


class StreamSampler(Sampler):
    """Sampler for a :class:`StreamDataset`: only fixes how many items form a batch."""

    def __init__(self, batch_size: int = 1) -> None:
        if not _is_positive_int(batch_size):
            raise ValueError(
                f"batch_size should be a positive integer value, but got batch_size={batch_size}"
            )
        self.batch_size = int(batch_size)

    def __iter__(self) -> Iterator[range]:
        return self

    def __next__(self) -> range:
        return range(self.batch_size)


def _check_indices(indices: Any) -> None:
    if indices is not None and not isinstance(indices, (collections.abc.Sequence, np.ndarray)):
        raise ValueError(f"indices should be None or a sequence, but got {type(indices)}")


def _indices_count(indices: Sequence[Any] | None) -> int | None:
    """How many samples ``indices`` selects (None: the whole dataset); empty is an error."""
    _check_indices(indices)
    if indices is not None and len(indices) == 0:
        raise ValueError("indices should not be empty")
    return None if indices is None else len(indices)


class SequentialSampler(MapSampler):
    """Visits the dataset (or the given ``indices``) in order."""

    def __init__(
        self,
        dataset: Any,
        batch_size: int = 1,
        drop_last: bool = False,
        indices: Sequence[Any] | None = None,
        world_size: int | None = None,
        rank: int | None = None,
    ) -> None:
        num = _indices_count(indices)
        super().__init__(dataset, batch_size, drop_last, num, world_size, rank)
        self.indices = indices

    def sample(self) -> Sequence[Any]:
        if self.indices is None:
            return range(len(self.dataset))
        return list(self.indices)


class RandomSampler(MapSampler):
    """Visits the dataset (or ``indices``) in a new random order every epoch.

    Each ``iter()`` draws a fresh permutation from the sampler's own generator, so the
    sequence of epochs is reproducible from ``seed``; without one, the seed is drawn from NumPy's
    global generator, so ``np.random.seed`` makes runs repeat.
    """

    def __init__(
        self,
        dataset: Any,
        batch_size: int = 1,
        drop_last: bool = False,
        indices: Sequence[Any] | None = None,
        world_size: int | None = None,
        rank: int | None = None,
        seed: int | None = None,
    ) -> None:
        num = _indices_count(indices)
        super().__init__(dataset, batch_size, drop_last, num, world_size, rank, seed)
        self.indices = indices

    def sample(self) -> list[Any]:
        if self.indices is None:
            return self.rng.permutation(len(self.dataset)).tolist()
        order = self.rng.permutation(len(self.indices)).tolist()
        return [self.indices[i] for i in order]


class ReplacementSampler(MapSampler):
    """Draws ``num_samples`` indices with replacement, optionally weighted."""

    def __init__(
        self,
        dataset: Any,
        batch_size: int = 1,
        drop_last: bool = False,
        num_samples: int | None = None,
        weights: Sequence[float] | None = None,
        world_size: int | None = None,
        rank: int | None = None,
        seed: int | None = None,
    ) -> None:
        super().__init__(dataset, batch_size, drop_last, num_samples, world_size, rank, seed)
        if weights is not None:
            if not isinstance(weights, (collections.abc.Sequence, np.ndarray)):
                raise ValueError(
                    f"weights should be None or a sequence, but got {type(weights)}"
                )
            if len(weights) != len(dataset):
                raise ValueError(
                    f"len(dataset)={len(dataset)} should be equal to len(weights)={len(weights)}"
                )
            w = np.asarray(weights, dtype=np.float64)
            if np.any(w < 0) or not np.isfinite(w).all() or w.sum() <= 0:
                raise ValueError("weights should be finite, non-negative and not all zero")
            self.weights: np.ndarray | None = w / w.sum()
        else:
            self.weights = None

    def sample(self) -> list[int]:
        n = len(self.dataset)
        total = self.num_samples * self.world_size  # already a multiple: no padding needed
        if self.weights is None:
            return self.rng.randint(n, size=total).tolist()
        return self.rng.choice(n, size=total, replace=True, p=self.weights).tolist()


class Infinite(MapSampler):
    """Wraps a map sampler so that it restarts forever instead of ending an epoch."""

    def __init__(self, sampler: MapSampler) -> None:  # noqa: D107 - no MapSampler init on purpose
        if not isinstance(sampler, MapSampler):
            raise ValueError(
                f"Infinite expects a MapSampler, but got {type(sampler).__name__}"
            )
        self.sampler = sampler
        self.sampler_iter = iter(sampler)

    def __iter__(self) -> Infinite:
        return self

    def __next__(self) -> list[Any]:
        try:
            return next(self.sampler_iter)
        except StopIteration:
            self.sampler_iter = iter(self.sampler)
            return next(self.sampler_iter)

    def __len__(self) -> int:
        return int(np.iinfo(np.int64).max)

    def __getattr__(self, name: str) -> Any:
        if name in ("sampler", "sampler_iter"):  # not yet set (e.g. during unpickling)
            raise AttributeError(name)
        return getattr(self.sampler, name)
