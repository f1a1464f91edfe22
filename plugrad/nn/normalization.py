"""Normalisation layers: batch, layer and group normalisation, with MegEngine's shapes.

``weight``, ``bias`` and the running statistics (buffers) are shaped (1, C, 1, 1). In training
the batch statistics normalise and ``running = momentum * running + (1 - momentum) * batch``
(momentum 0.9 by default; the variance unbiased); in eval mode the running statistics normalise.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from plugrad import functional as F
from plugrad.core.tensor import Parameter, Tensor
from plugrad.nn import init
from plugrad.nn.module import Module

__all__ = ["BatchNorm1d", "BatchNorm2d", "LayerNorm", "GroupNorm"]


class _BatchNorm(Module):
    _ranks: tuple[int, ...] = ()
    _shape_text = ""

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.9,
                 affine: bool = True, track_running_stats: bool = True, freeze: bool = False,
                 **kwargs: Any):
        super().__init__(**kwargs)
        self.num_features = int(num_features)
        self.eps = eps
        self.momentum = momentum
        self.affine = affine
        self.track_running_stats = track_running_stats
        self.freeze = freeze
        shape = (1, self.num_features, 1, 1)
        self.weight: Parameter | None
        self.bias: Parameter | None
        if affine:
            self.weight = Parameter(np.ones(shape, np.float32))
            self.bias = Parameter(np.zeros(shape, np.float32))
        else:
            self.weight = self.bias = None
        if track_running_stats:
            self.running_mean = Tensor(np.zeros(shape, np.float32))
            self.running_var = Tensor(np.ones(shape, np.float32))

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim not in self._ranks or x.shape[1] != self.num_features:
            raise ValueError(f"{self._label()}: expected an input of shape "
                             f"{self._shape_text.format(C=self.num_features)}; got shape "
                             f"{tuple(x.shape)}")
        # Frozen layers normalise with their running statistics even while training.
        if self.track_running_stats and not (self.training and not self.freeze):
            return F.nn.batch_norm(x, self.running_mean, self.running_var, self.weight,
                                   self.bias, training=False, eps=self.eps)
        running_mean = self.running_mean if self.track_running_stats else None
        running_var = self.running_var if self.track_running_stats else None
        return F.nn.batch_norm(x, running_mean, running_var, self.weight, self.bias,
                               training=True, momentum=self.momentum, eps=self.eps)

    def _module_info_string(self) -> str:
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
                f"affine={self.affine}, track_running_stats={self.track_running_stats}")


class BatchNorm1d(_BatchNorm):
    """Batch normalisation of (N, C) or (N, C, L) inputs over all axes but C."""

    _ranks = (2, 3)
    _shape_text = "(N, {C}) or (N, {C}, L)"


class BatchNorm2d(_BatchNorm):
    """Batch normalisation of (N, C, H, W) inputs over N, H and W."""

    _ranks = (4,)
    _shape_text = "(N, {C}, H, W)"


def _reset_affine(norm: LayerNorm | GroupNorm) -> None:
    """Weight ones and bias zeros, MegEngine's start for a norm's affine parameters."""
    if norm.weight is not None:
        init.ones_(norm.weight)
    if norm.bias is not None:
        init.zeros_(norm.bias)


class LayerNorm(Module):
    """Standardises each sample over its trailing ``normalized_shape`` axes.

    With ``affine``, ``weight`` (ones) and ``bias`` (zeros) of ``normalized_shape`` scale and
    shift every element.
    """

    def __init__(self, normalized_shape: Any, eps: float = 1e-5, affine: bool = True,
                 **kwargs: Any):
        super().__init__(**kwargs)
        shape = (normalized_shape,) if isinstance(normalized_shape, int) \
            else tuple(int(s) for s in normalized_shape)
        self.normalized_shape = shape
        self.eps = eps
        self.affine = affine
        self.weight = Parameter(np.ones(shape, np.float32)) if affine else None
        self.bias = Parameter(np.zeros(shape, np.float32)) if affine else None

    def reset_parameters(self) -> None:
        _reset_affine(self)

    def forward(self, x: Tensor) -> Tensor:
        return F.nn.layer_norm(x, self.normalized_shape, self.affine, self.weight, self.bias,
                               self.eps)

    def _module_info_string(self) -> str:
        return f"normalized_shape={self.normalized_shape}, eps={self.eps}, affine={self.affine}"


class GroupNorm(Module):
    """Standardises each of ``num_groups`` channel groups of every (N, C, ...) sample.

    With ``affine``, ``weight`` (ones) and ``bias`` (zeros) of ``num_channels`` values scale
    and shift each channel.
    """

    def __init__(self, num_groups: int, num_channels: int, eps: float = 1e-5,
                 affine: bool = True, **kwargs: Any):
        super().__init__(**kwargs)
        if num_groups < 1 or num_channels % num_groups:
            raise ValueError(f"GroupNorm: num_channels ({num_channels}) must be divisible by "
                             f"num_groups ({num_groups}), a positive int")
        self.num_groups, self.num_channels = int(num_groups), int(num_channels)
        self.eps = eps
        self.affine = affine
        self.weight = Parameter(np.ones((self.num_channels,), np.float32)) if affine else None
        self.bias = Parameter(np.zeros((self.num_channels,), np.float32)) if affine else None

    def reset_parameters(self) -> None:
        _reset_affine(self)

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim < 2 or x.shape[1] != self.num_channels:
            raise ValueError(f"{self._label()}: expected an input of shape "
                             f"(N, {self.num_channels}, ...); got shape {tuple(x.shape)}")
        return F.nn.group_norm(x, self.num_groups, self.affine, self.weight, self.bias, self.eps)

    def _module_info_string(self) -> str:
        return (f"groups={self.num_groups}, channels={self.num_channels}, eps={self.eps}, "
                f"affine={self.affine}")
