"""Abstract transform protocol shared by all data transforms."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, Sequence

__all__ = ["Transform", "PseudoTransform"]


def _owner(obj: Any, name: str) -> Any:
    """The class in ``type(obj)``'s MRO that defines attribute ``name`` (or None).

    Used to make sure a subclass that overrides the per-sample path does not silently
    inherit a whole-batch fast path that no longer matches it.
    """
    for cls in type(obj).__mro__:
        if name in cls.__dict__:
            return cls
    return None


class Transform(ABC):
    """Maps one sample to a new sample; ``apply_batch`` maps a list of samples.

    Subclasses may also implement the private *stacked* protocol (``_supports_stacked`` and
    ``_apply_stacked``): the same transform applied to a whole batch whose fields are already
    stacked into arrays. The DataLoader uses it as a fast path only when the result is
    guaranteed to equal transforming sample by sample and collating.
    """

    def apply_batch(self, inputs: Sequence[Any]) -> Sequence[Any]:
        """Transform each sample of a batch independently."""
        return tuple(self.apply(x) for x in inputs)

    @abstractmethod
    def apply(self, input: Any) -> Any:
        """Transform one sample."""

    def _supports_stacked(self) -> bool:
        return False

    def _apply_stacked(self, stacked: Any) -> Any:
        raise NotImplementedError

    def __repr__(self) -> str:
        return self.__class__.__name__


class PseudoTransform(Transform):
    """The identity; what a DataLoader uses when given no transform."""

    def apply(self, input: Any) -> Any:
        return input

    def apply_batch(self, inputs: Sequence[Any]) -> Sequence[Any]:
        return inputs

    def _supports_stacked(self) -> bool:
        return _owner(self, "apply") is PseudoTransform

    def _apply_stacked(self, stacked: Any) -> Any:
        return stacked
