"""Dataset base classes and the in-memory datasets built from arrays."""

from __future__ import annotations

import bisect
from abc import ABC, abstractmethod
from typing import Any, Iterator, List, Sequence, Tuple

import numpy as np

__all__ = ["Dataset", "StreamDataset", "ArrayDataset", "ConcatDataset"]


class Dataset(ABC):
    """A map-style dataset: items are fetched by integer index."""

    @abstractmethod
    def __getitem__(self, index: int) -> Any: ...

    @abstractmethod
    def __len__(self) -> int: ...


class StreamDataset(Dataset):
    """An iterable dataset whose items can only be read in order (e.g. a network stream).

    The DataLoader pairs it with a :class:`~plugrad.data.StreamSampler`, which only says how
    many consecutive items form a batch.
    """

    @abstractmethod
    def __iter__(self) -> Iterator[Any]: ...

    def __getitem__(self, index: int) -> Any:
        raise AssertionError("can not get item from StreamDataset by index")

    def __len__(self) -> int:
        raise AssertionError("StreamDataset does not have length")


class ArrayDataset(Dataset):
    """Zips equally long arrays: item ``i`` is ``(arrays[0][i], arrays[1][i], ...)``.

    plugrad Tensors are copied to NumPy arrays once, here, so batches are gathered on the host
    like any other array's (the DataLoader yields NumPy batches).
    """

    def __init__(self, *arrays: Any) -> None:
        if not arrays:
            raise ValueError("ArrayDataset needs at least one array")
        arrays = tuple(_host(a) for a in arrays)
        lengths = [len(a) for a in arrays]
        if any(n != lengths[0] for n in lengths):
            raise ValueError(
                "lengths of input arrays are inconsistent: got first-dimension lengths {}".format(
                    lengths
                )
            )
        self.arrays = arrays
        # Only NumPy arrays can be gathered a whole batch at a time.
        self._stackable = all(isinstance(a, np.ndarray) for a in arrays)

    def __getitem__(self, index: int) -> Tuple[Any, ...]:
        return tuple(array[index] for array in self.arrays)

    def __len__(self) -> int:
        return len(self.arrays[0])

    def _get_stacked(self, indices: Sequence[int]) -> Tuple[np.ndarray, ...]:
        """Gather a batch with one fancy-index per array (same result as stacking items)."""
        idx = np.asarray(indices, dtype=np.intp)
        return tuple(array[idx] for array in self.arrays)


def _host(array: Any) -> Any:
    """A Tensor's values as a NumPy array; anything else as it is."""
    from plugrad.core.tensor import Tensor

    if isinstance(array, Tensor):
        if array.ndim == 0:
            raise ValueError("ArrayDataset: a 0-d Tensor has no items; got shape ()")
        return array.numpy()
    return array


class ConcatDataset(Dataset):
    """Chains several map-style datasets into one; index ``i`` runs through them in order."""

    def __init__(self, datasets: Sequence[Dataset]) -> None:
        self.datasets: List[Dataset] = list(datasets)
        if not self.datasets:
            raise ValueError("datasets should not be an empty iterable")
        for d in self.datasets:
            if isinstance(d, StreamDataset):
                raise TypeError("ConcatDataset does not support StreamDataset")
        self.cumulative_sizes: List[int] = []
        total = 0
        for d in self.datasets:
            total += len(d)
            self.cumulative_sizes.append(total)

    def __len__(self) -> int:
        return self.cumulative_sizes[-1]

    def __getitem__(self, index: int) -> Any:
        n = len(self)
        if index < 0:
            if -index > n:
                raise IndexError(
                    "index {} is out of range for a dataset of length {}".format(index, n)
                )
            index += n
        elif index >= n:
            raise IndexError("index {} is out of range for a dataset of length {}".format(index, n))
        which = bisect.bisect_right(self.cumulative_sizes, index)
        offset = self.cumulative_sizes[which - 1] if which > 0 else 0
        return self.datasets[which][index - offset]
