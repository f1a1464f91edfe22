"""Activation layers: thin Modules over the functions in ``plugrad.functional``."""
from __future__ import annotations

from typing import Any

import numpy as np

from plugrad import functional as F
from plugrad.core.tensor import Parameter, Tensor
from plugrad.nn.module import Module

__all__ = ["ReLU", "LeakyReLU", "PReLU", "Sigmoid", "GELU", "Softmax"]


class ReLU(Module):
    """``max(x, 0)``."""

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(x)


class LeakyReLU(Module):
    """``x`` where positive, ``negative_slope * x`` elsewhere."""

    def __init__(self, negative_slope: float = 0.01, **kwargs: Any):
        super().__init__(**kwargs)
        self.negative_slope = negative_slope

    def forward(self, x: Tensor) -> Tensor:
        return F.leaky_relu(x, self.negative_slope)

    def _module_info_string(self) -> str:
        return f"negative_slope={self.negative_slope}"


class PReLU(Module):
    """``x`` where positive, ``weight * x`` elsewhere; ``weight`` is learned.

    Args:
        num_parameters: 1 (one slope shared by all channels) or the number of channels of
            an NCHW input.
        init: the slopes' initial value.

    ``weight`` is shaped as MegEngine's: (1,) for one slope, (1, C, 1, 1) for one per channel.
    """

    def __init__(self, num_parameters: int = 1, init: float = 0.25, **kwargs: Any):
        super().__init__(**kwargs)
        if isinstance(num_parameters, bool) or not isinstance(num_parameters, int) \
                or num_parameters < 1:
            raise ValueError(f"PReLU: num_parameters must be a positive int; got "
                             f"{num_parameters!r}")
        self.num_parameters = num_parameters
        shape = (1, num_parameters, 1, 1) if num_parameters > 1 else (1,)
        self.weight = Parameter(np.full(shape, init, np.float32))

    def forward(self, x: Tensor) -> Tensor:
        if self.num_parameters > 1 and (x.ndim != 4 or x.shape[1] != self.num_parameters):
            raise ValueError(f"{self._label()}: {self.num_parameters} slopes, one per channel, "
                             f"need an input of shape (N, {self.num_parameters}, H, W); got "
                             f"shape {tuple(x.shape)}")
        return F.nn.prelu(x, self.weight)

    def _module_info_string(self) -> str:
        return f"num_parameters={self.num_parameters}"


class Sigmoid(Module):
    """``1 / (1 + exp(-x))``."""

    def forward(self, x: Tensor) -> Tensor:
        return F.sigmoid(x)


class GELU(Module):
    """``x * Phi(x)``, Phi the standard normal CDF."""

    def forward(self, x: Tensor) -> Tensor:
        return F.gelu(x)


class Softmax(Module):
    """Softmax along ``axis`` (MegEngine's default axis when None)."""

    def __init__(self, axis: int | None = None, **kwargs: Any):
        super().__init__(**kwargs)
        self.axis = axis

    def forward(self, x: Tensor) -> Tensor:
        return F.softmax(x, self.axis)

    def _module_info_string(self) -> str:
        return f"axis={self.axis}"
