"""Convolution layers: Conv2d and ConvTranspose2d, with MegEngine's parameter layouts."""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from plugrad import functional as F
from plugrad.core.tensor import Parameter, Tensor
from plugrad.functional._utils import pair
from plugrad.nn import init
from plugrad.nn.module import Module

__all__ = ["Conv1d", "Conv2d", "ConvTranspose2d"]


class _ConvNd(Module):
    """Shared set-up: argument checks, weight/bias creation, MegEngine's initialisation
    (weight from ``N(0, 1 / fan_in)``, bias zeros) and the repr."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: Any, stride: Any,
                 padding: Any, dilation: Any, groups: int, bias: bool, **kwargs: Any):
        super().__init__(**kwargs)
        kind = type(self).__name__
        if in_channels % groups or out_channels % groups:
            raise ValueError(f"{kind}: in_channels ({in_channels}) and out_channels "
                             f"({out_channels}) must both be divisible by groups ({groups})")
        self.in_channels = int(in_channels)
        self.out_channels = int(out_channels)
        self.kernel_size = pair(kind, "kernel_size", kernel_size, 1)
        self.stride = pair(kind, "stride", stride, 1)
        self.padding = pair(kind, "padding", padding, 0)
        self.dilation = pair(kind, "dilation", dilation, 1)
        self.groups = int(groups)
        self.weight = Parameter(np.zeros(self._infer_weight_shape(), np.float32))
        self.bias = Parameter(np.zeros((1, self.out_channels, 1, 1), np.float32)) \
            if bias else None
        self.reset_parameters()

    def _infer_weight_shape(self) -> tuple[int, ...]:
        raise NotImplementedError

    def _get_fanin(self) -> int:
        raise NotImplementedError

    def reset_parameters(self) -> None:
        init.normal_(self.weight, 0.0, math.sqrt(1.0 / self._get_fanin()))
        if self.bias is not None:
            init.zeros_(self.bias)

    def _check_input(self, x: Tensor) -> None:
        shape = tuple(x.shape)
        if len(shape) != 4:
            hint = "; add a batch axis, e.g. F.expand_dims(x, 0)" if len(shape) == 3 else ""
            raise ValueError(f"{self._label()}: expected a 4-D input (N, {self.in_channels}, "
                             f"H, W); got shape {shape} ({len(shape)}-D){hint}")
        if shape[1] != self.in_channels:
            raise ValueError(f"{self._label()}: expected {self.in_channels} input channels, "
                             f"an input of shape (N, {self.in_channels}, H, W); got shape "
                             f"{shape} with {shape[1]} channels")

    def _module_info_string(self) -> str:
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}"
        if self.stride != (1, 1):
            s += f", stride={self.stride}"
        if self.padding != (0, 0):
            s += f", padding={self.padding}"
        if self.dilation != (1, 1):
            s += f", dilation={self.dilation}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        return s


class Conv2d(_ConvNd):
    """2-D convolution (cross-correlation) over NCHW inputs.

    Args:
        in_channels, out_channels: channel counts of input and output.
        kernel_size, stride, padding, dilation: an int or an (h, w) pair.
        groups: split channels into independent groups (``in_channels`` for depthwise).
        bias: learn a bias of shape (1, out_channels, 1, 1).

    ``weight`` is (out_channels, in_channels, kh, kw), or with groups MegEngine's
    (groups, out_channels // groups, in_channels // groups, kh, kw).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: Any, stride: Any = 1,
                 padding: Any = 0, dilation: Any = 1, groups: int = 1, bias: bool = True,
                 conv_mode: str = "cross_correlation", compute_mode: str = "default",
                 **kwargs: Any):
        self.conv_mode = conv_mode
        self.compute_mode = compute_mode
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         groups, bias, **kwargs)

    def _infer_weight_shape(self) -> tuple[int, ...]:
        kh, kw = self.kernel_size
        if self.groups == 1:
            return (self.out_channels, self.in_channels, kh, kw)
        g = self.groups
        return (g, self.out_channels // g, self.in_channels // g, kh, kw)

    def _get_fanin(self) -> int:
        return self.kernel_size[0] * self.kernel_size[1] * self.in_channels

    def forward(self, x: Tensor) -> Tensor:
        self._check_input(x)
        return F.conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation,
                        self.groups, self.conv_mode, self.compute_mode)


class ConvTranspose2d(_ConvNd):
    """2-D transposed convolution: the gradient of a Conv2d with respect to its input.

    ``weight`` is (in_channels, out_channels, kh, kw), or with groups
    (groups, in_channels // groups, out_channels // groups, kh, kw), as in MegEngine.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: Any, stride: Any = 1,
                 padding: Any = 0, output_padding: Any = 0, dilation: Any = 1, groups: int = 1,
                 bias: bool = True, conv_mode: str = "cross_correlation",
                 compute_mode: str = "default", **kwargs: Any):
        self.conv_mode = conv_mode
        self.compute_mode = compute_mode
        self.output_padding = pair("ConvTranspose2d", "output_padding", output_padding, 0)
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         groups, bias, **kwargs)

    def _infer_weight_shape(self) -> tuple[int, ...]:
        kh, kw = self.kernel_size
        if self.groups == 1:
            return (self.in_channels, self.out_channels, kh, kw)
        g = self.groups
        return (g, self.in_channels // g, self.out_channels // g, kh, kw)

    def _get_fanin(self) -> int:
        return self.kernel_size[0] * self.kernel_size[1] * self.out_channels

    def forward(self, x: Tensor) -> Tensor:
        self._check_input(x)
        return F.conv_transpose2d(x, self.weight, self.bias, self.stride, self.padding,
                                  self.output_padding, self.dilation, self.groups,
                                  self.conv_mode, self.compute_mode)


class Conv1d(Module):
    """1-D convolution (cross-correlation) over NCL inputs.

    Args:
        in_channels, out_channels: channel counts of input and output.
        kernel_size, stride, padding, dilation: ints.
        groups: split channels into independent groups.
        bias: learn a bias of shape (1, out_channels, 1).

    ``weight`` is (out_channels, in_channels, k), or with groups
    (groups, out_channels // groups, in_channels // groups, k), initialised from
    ``N(0, 1 / (k * in_channels))`` as MegEngine does; the bias starts at zero.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 padding: int = 0, dilation: int = 1, groups: int = 1, bias: bool = True,
                 conv_mode: str = "cross_correlation", compute_mode: str = "default",
                 **kwargs: Any):
        super().__init__(**kwargs)
        if in_channels % groups or out_channels % groups:
            raise ValueError(f"Conv1d: in_channels ({in_channels}) and out_channels "
                             f"({out_channels}) must both be divisible by groups ({groups})")
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        self.kernel_size, self.stride = int(kernel_size), int(stride)
        self.padding, self.dilation, self.groups = int(padding), int(dilation), int(groups)
        self.conv_mode, self.compute_mode = conv_mode, compute_mode
        k, g = self.kernel_size, self.groups
        shape = (self.out_channels, self.in_channels, k) if g == 1 \
            else (g, self.out_channels // g, self.in_channels // g, k)
        self.weight = Parameter(np.zeros(shape, np.float32))
        self.bias = Parameter(np.zeros((1, self.out_channels, 1), np.float32)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        init.normal_(self.weight, 0.0, math.sqrt(1.0 / (self.kernel_size * self.in_channels)))
        if self.bias is not None:
            init.zeros_(self.bias)

    def forward(self, x: Tensor) -> Tensor:
        shape = tuple(x.shape)
        if len(shape) != 3 or shape[1] != self.in_channels:
            raise ValueError(f"{self._label()}: expected a 3-D input (N, {self.in_channels}, L); "
                             f"got shape {shape}")
        return F.conv1d(x, self.weight, self.bias, self.stride, self.padding, self.dilation,
                        self.groups, self.conv_mode, self.compute_mode)

    def _module_info_string(self) -> str:
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}"
        for name, default in (("stride", 1), ("padding", 0), ("dilation", 1), ("groups", 1)):
            if getattr(self, name) != default:
                s += f", {name}={getattr(self, name)}"
        return s + (", bias=False" if self.bias is None else "")
