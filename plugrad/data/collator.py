"""Turns a list of transformed samples into one batch of NumPy arrays."""

from __future__ import annotations

import collections.abc
from typing import Any, Sequence

import numpy as np

from plugrad.core.tensor import Tensor

__all__ = ["Collator", "SampleShapeError"]


class SampleShapeError(ValueError):
    """Samples of one batch disagree in shape; ``position`` is the first odd one's place."""

    def __init__(self, message: str, position: int):
        super().__init__(message)
        self.position = position

    def __reduce__(self):  # rebuilt with its position when a worker process sends it back
        return type(self), (str(self), self.position)


def _stack(inputs: Sequence[np.ndarray]) -> np.ndarray:
    try:
        return np.stack(inputs)
    except ValueError:
        first = inputs[0].shape
        position = next((i for i, x in enumerate(inputs) if np.shape(x) != first), None)
        if position is None:
            raise
        raise SampleShapeError(
            f"Collator: sample {position} of the batch has shape {np.shape(inputs[position])} "
            f"but sample 0 has shape {first}; every sample of a batch needs one shape (resize "
            f"or pad them in a transform)", position) from None

_ERR = (
    "Collator: inputs must contain numpy arrays, plugrad Tensors, numbers, Unicode strings, "
    "bytes, dicts or lists; found {}"
)


class Collator:
    """Default batching rule, applied recursively to the fields of the samples.

    * NumPy arrays (and plugrad Tensors, as NumPy arrays) are stacked along a new first axis;
    * numbers (Python or NumPy scalars) become a 1-D array (Python floats as float64);
    * strings and bytes are kept as a list;
    * tuples (named or not), lists and dicts are collated field by field and keep their
      container type (a list of ``(image, label)`` tuples gives ``(images, labels)``).
    """

    def apply(self, inputs: Sequence[Any]) -> Any:
        """Collate ``inputs`` (one entry per sample) into a batch."""
        if len(inputs) == 0:
            raise ValueError("Collator: cannot collate an empty batch")
        elem = inputs[0]
        if isinstance(elem, np.ndarray):
            return _stack(inputs)
        if isinstance(elem, Tensor):  # a dataset of Tensors: batches stay NumPy arrays
            return _stack([t.numpy() for t in inputs])
        if isinstance(elem, (str, bytes)):
            return list(inputs)
        if isinstance(elem, (bool, np.bool_)):
            return np.array(inputs, dtype=np.bool_)
        if isinstance(elem, np.generic):
            return np.array(inputs)
        if isinstance(elem, float):
            return np.array(inputs, dtype=np.float64)
        if isinstance(elem, int):
            return np.array(inputs)
        if isinstance(elem, collections.abc.Mapping):
            return {key: self.apply([d[key] for d in inputs]) for key in elem}
        if isinstance(elem, tuple) and hasattr(elem, "_fields"):  # namedtuple
            return type(elem)(*(self.apply(list(field)) for field in zip(*inputs)))
        if isinstance(elem, collections.abc.Sequence):
            size = len(elem)
            if any(len(x) != size for x in inputs):
                raise ValueError("Collator: each sample in a batch should have the same size")
            fields = [self.apply(list(field)) for field in zip(*inputs)]
            return tuple(fields) if isinstance(elem, tuple) else fields
        raise TypeError(_ERR.format(type(elem)))
