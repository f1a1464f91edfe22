"""Convolution layers: Conv2d and ConvTranspose2d, with MegEngine's parameter layouts."""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from plugrad import functional as F
from plugrad.core.tensor import Parameter, Tensor
from plugrad.functional._utils import pair, single
from plugrad.nn import init
from plugrad.nn.module import Module

__all__ = ["Conv1d", "Conv2d", "ConvTranspose2d"]


class _ConvNd(Module):
    """Shared set-up: argument checks, weight/bias creation, MegEngine's initialisation
    (weight from ``N(0, 1 / fan_in)``, bias zeros) and the repr.

    ``_dims`` names the spatial axes: ("H", "W") for the 2-D layers, ("L",) for Conv1d, whose
    sizes stay plain ints as in MegEngine.
    """

    _dims: tuple[str, ...] = ("H", "W")

    def __init__(self, in_channels: int, out_channels: int, kernel_size: Any, stride: Any,
                 padding: Any, dilation: Any, groups: int, bias: bool, **kwargs: Any):
        super().__init__(**kwargs)
        kind = type(self).__name__
        if in_channels % groups or out_channels % groups:
            raise ValueError(f"{kind}: in_channels ({in_channels}) and out_channels "
                             f"({out_channels}) must both be divisible by groups ({groups})")
        self.in_channels = int(in_channels)
        self.out_channels = int(out_channels)
        self.kernel_size = self._size("kernel_size", kernel_size, 1)
        self.stride = self._size("stride", stride, 1)
        self.padding = self._size("padding", padding, 0)
        self.dilation = self._size("dilation", dilation, 1)
        self.groups = int(groups)
        self.weight = Parameter(np.zeros(self._infer_weight_shape(), np.float32))
        bias_shape = (1, self.out_channels) + (1,) * len(self._dims)
        self.bias = Parameter(np.zeros(bias_shape, np.float32)) if bias else None
        self.reset_parameters()

    def _size(self, name: str, value: Any, minimum: int) -> Any:
        return pair(type(self).__name__, name, value, minimum)

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
        rank = 2 + len(self._dims)
        if len(shape) == rank and shape[1] == self.in_channels:
            return
        wanted = f"(N, {self.in_channels}, {', '.join(self._dims)})"
        if len(shape) != rank:
            hint = "; add a batch axis, e.g. F.expand_dims(x, 0)" if len(shape) == rank - 1 \
                else ""
            raise ValueError(f"{self._label()}: expected a {rank}-D input {wanted}; got shape "
                             f"{shape} ({len(shape)}-D){hint}")
        raise ValueError(f"{self._label()}: expected {self.in_channels} input channels, an "
                         f"input of shape {wanted}; got shape {shape} with {shape[1]} channels")

    def _module_info_string(self) -> str:
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}"
        ones, zeros = self._size("one", 1, 0), self._size("zero", 0, 0)
        if self.stride != ones:
            s += f", stride={self.stride}"
        if self.padding != zeros:
            s += f", padding={self.padding}"
        if self.dilation != ones:
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


class Conv1d(_ConvNd):
    """1-D convolution (cross-correlation) over NCL inputs.

    Args:
        in_channels, out_channels: channel counts of input and output.
        kernel_size, stride, padding, dilation: ints.
        groups: split channels into independent groups.
        bias: learn a bias of shape (1, out_channels, 1).
        padding_mode: ``"zeros"``, ``"reflect"`` or ``"replicate"``: what the ``padding``
            positions on each side hold (see :func:`plugrad.functional.pad`).

    ``weight`` is (out_channels, in_channels, k), or with groups
    (groups, out_channels // groups, in_channels // groups, k), initialised from
    ``N(0, 1 / (k * in_channels))`` as MegEngine does; the bias starts at zero.
    """

    _dims = ("L",)
    _padding_modes = ("zeros", "reflect", "replicate")

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 padding: int = 0, dilation: int = 1, groups: int = 1, bias: bool = True,
                 conv_mode: str = "cross_correlation", compute_mode: str = "default",
                 padding_mode: str = "zeros", **kwargs: Any):
        if padding_mode not in self._padding_modes:
            raise ValueError(f"Conv1d: padding_mode must be one of {self._padding_modes}; got "
                             f"{padding_mode!r}")
        self.conv_mode = conv_mode
        self.compute_mode = compute_mode
        self.padding_mode = padding_mode
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         groups, bias, **kwargs)

    def _size(self, name: str, value: Any, minimum: int) -> int:
        return single("Conv1d", name, value, minimum)

    def _infer_weight_shape(self) -> tuple[int, ...]:
        k, g = self.kernel_size, self.groups
        if g == 1:
            return (self.out_channels, self.in_channels, k)
        return (g, self.out_channels // g, self.in_channels // g, k)

    def _get_fanin(self) -> int:
        return self.kernel_size * self.in_channels

    def forward(self, x: Tensor) -> Tensor:
        self._check_input(x)
        padding = self.padding
        if self.padding_mode != "zeros" and padding:
            x = F.pad(x, ((0, 0), (0, 0), (padding, padding)), mode=self.padding_mode)
            padding = 0
        return F.conv1d(x, self.weight, self.bias, self.stride, padding, self.dilation,
                        self.groups, self.conv_mode, self.compute_mode)
