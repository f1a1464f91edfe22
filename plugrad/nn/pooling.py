"""Pooling layers: MaxPool2d, AvgPool2d and the adaptive forms."""
from __future__ import annotations

from typing import Any

from plugrad import functional as F
from plugrad.core.tensor import Tensor
from plugrad.nn.module import Module

__all__ = ["MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d", "AdaptiveMaxPool2d"]


class _PoolNd(Module):
    def __init__(self, kernel_size: Any, stride: Any = None, padding: Any = 0, **kwargs: Any):
        super().__init__(**kwargs)
        self.kernel_size = kernel_size
        self.stride = kernel_size if stride is None else stride
        self.padding = padding

    def _check_input(self, x: Tensor) -> None:
        if x.ndim != 4:
            raise ValueError(f"{self._label()}: expected a 4-D input (N, C, H, W); got shape "
                             f"{tuple(x.shape)} ({x.ndim}-D)")

    def _module_info_string(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class MaxPool2d(_PoolNd):
    """Maximum over each ``kernel_size`` window; ``stride`` defaults to ``kernel_size``."""

    def forward(self, x: Tensor) -> Tensor:
        self._check_input(x)
        return F.max_pool2d(x, self.kernel_size, self.stride, self.padding)


class AvgPool2d(_PoolNd):
    """Mean over each window; ``mode`` "average_count_exclude_padding" (default) divides by
    the cells inside the input, "average" by the window size."""

    def __init__(self, kernel_size: Any, stride: Any = None, padding: Any = 0,
                 mode: str = "average_count_exclude_padding", **kwargs: Any):
        super().__init__(kernel_size, stride, padding, **kwargs)
        self.mode = mode

    def forward(self, x: Tensor) -> Tensor:
        self._check_input(x)
        return F.avg_pool2d(x, self.kernel_size, self.stride, self.padding, self.mode)

    def _module_info_string(self) -> str:
        return super()._module_info_string() + f", mode={self.mode}"


class _AdaptivePoolNd(Module):
    def __init__(self, oshp: Any, **kwargs: Any):
        super().__init__(**kwargs)
        self.oshp = oshp

    def _module_info_string(self) -> str:
        return f"oshp={self.oshp}"


class AdaptiveAvgPool2d(_AdaptivePoolNd):
    """Average pooling to the fixed output size ``oshp`` (an int or (OH, OW))."""

    def forward(self, x: Tensor) -> Tensor:
        return F.adaptive_avg_pool2d(x, self.oshp)


class AdaptiveMaxPool2d(_AdaptivePoolNd):
    """Max pooling to the fixed output size ``oshp`` (an int or (OH, OW))."""

    def forward(self, x: Tensor) -> Tensor:
        return F.adaptive_max_pool2d(x, self.oshp)
