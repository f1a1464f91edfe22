"""Structural layers without parameters: Identity, Flatten and Dropout."""
from __future__ import annotations

from typing import Any

from plugrad import functional as F
from plugrad.core.tensor import Tensor
from plugrad.nn.module import Module

__all__ = ["Identity", "Flatten", "Dropout"]


class Identity(Module):
    """Returns its input unchanged (a placeholder, e.g. for a removed head)."""

    def forward(self, x: Any) -> Any:
        return x


class Flatten(Module):
    """Merges axes ``start_axis..end_axis`` (by default all but the batch axis)."""

    def __init__(self, start_axis: int = 1, end_axis: int = -1, **kwargs: Any):
        super().__init__(**kwargs)
        self.start_axis = start_axis
        self.end_axis = end_axis

    def forward(self, x: Tensor) -> Tensor:
        return F.flatten(x, self.start_axis, self.end_axis)

    def _module_info_string(self) -> str:
        return f"start_axis={self.start_axis}, end_axis={self.end_axis}"


class Dropout(Module):
    """In training, zeroes each element with probability ``drop_prob`` and scales the rest by
    ``1 / (1 - drop_prob)``; in eval mode, the identity."""

    def __init__(self, drop_prob: float = 0.0, **kwargs: Any):
        super().__init__(**kwargs)
        if not 0.0 <= drop_prob < 1.0:
            raise ValueError(f"Dropout: drop_prob must be in [0, 1); got {drop_prob}")
        self.drop_prob = drop_prob

    def forward(self, x: Tensor) -> Tensor:
        return F.nn.dropout(x, self.drop_prob, training=self.training)

    def _module_info_string(self) -> str:
        return f"drop_prob={self.drop_prob}"
