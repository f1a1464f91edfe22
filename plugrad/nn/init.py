"""Parameter initialisers (``plugrad.nn.init``, also ``M.init``), MegEngine's names and formulas.

Each ``*_`` function overwrites a tensor's values in place (the same Tensor object, so optimizers
and GradManagers that hold it see the new values) and draws from :mod:`plugrad.random`, so
:func:`plugrad.random.seed` makes initialisation reproducible.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from plugrad import random
from plugrad.core.tensor import Tensor

__all__ = [
    "fill_", "zeros_", "ones_", "uniform_", "normal_", "calculate_gain",
    "calculate_fan_in_and_fan_out", "calculate_correct_fan", "xavier_uniform_",
    "xavier_normal_", "msra_uniform_", "msra_normal_",
]


def _assign(tensor: Tensor, values: Tensor) -> None:
    if not isinstance(tensor, Tensor):
        raise TypeError(f"init: expected a Tensor to fill; got {type(tensor).__name__}")
    if values._dtype != tensor._dtype:
        values = values.astype(tensor._dtype)
    tensor._set_data(values._data)


def fill_(tensor: Tensor, val: float | int) -> None:
    """Fill ``tensor`` with ``val``."""
    from plugrad.functional import full_like

    _assign(tensor, full_like(tensor, val))


def zeros_(tensor: Tensor) -> None:
    """Fill ``tensor`` with zeros."""
    fill_(tensor, 0)


def ones_(tensor: Tensor) -> None:
    """Fill ``tensor`` with ones."""
    fill_(tensor, 1)


def uniform_(tensor: Tensor, a: float = 0.0, b: float = 1.0) -> None:
    """Fill ``tensor`` with samples from ``U[a, b)``."""
    _assign(tensor, random.uniform(a, b, tensor.shape, device=tensor.device))


def normal_(tensor: Tensor, mean: float = 0.0, std: float = 1.0) -> None:
    """Fill ``tensor`` with samples from ``N(mean, std**2)``."""
    _assign(tensor, random.normal(mean, std, tensor.shape, device=tensor.device))


def calculate_gain(nonlinearity: str, param: Any = None) -> float:
    """The gain that keeps activations' variance stable through ``nonlinearity``.

    ``linear``, the conv/conv_transpose names and ``sigmoid``: 1; ``tanh``: 5/3; ``relu``:
    sqrt(2); ``leaky_relu``: sqrt(2 / (1 + slope**2)) with slope ``param`` (0.01 by default).
    """
    linear_fns = ("linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d",
                  "conv_transpose2d", "conv_transpose3d", "sigmoid")
    if nonlinearity in linear_fns:
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else param
        if isinstance(slope, bool) or not isinstance(slope, (int, float)):
            raise TypeError(f"calculate_gain: negative_slope {slope!r} is not a number")
        return math.sqrt(2.0 / (1 + slope ** 2))
    raise ValueError(f"calculate_gain: unsupported nonlinearity {nonlinearity!r}; expected one "
                     f"of {list(linear_fns) + ['tanh', 'relu', 'leaky_relu']}")


def calculate_fan_in_and_fan_out(tensor: Tensor) -> tuple[float, float]:
    """(fan_in, fan_out) of a weight: (in, out) for Linear's (out, in); for a conv weight
    (O, C, kh, kw) they are C * kh * kw and O * kh * kw; a 5-D grouped conv weight
    (groups, O/g, C/g, kh, kw) counts one group's channels."""
    shape = tuple(tensor.shape)
    ndim = len(shape)
    if ndim < 2:
        raise ValueError(f"calculate_fan_in_and_fan_out: needs a tensor of at least 2 "
                         f"dimensions; got shape {shape}")
    if ndim == 5:  # MegEngine's grouped conv layout: (groups, out/g, in/g, kh, kw)
        shape = shape[1:]
    receptive = int(np.prod(shape[2:])) if len(shape) > 2 else 1
    return float(shape[1] * receptive), float(shape[0] * receptive)


def calculate_correct_fan(tensor: Tensor, mode: str) -> float:
    """fan_in (``mode="fan_in"``) or fan_out (``mode="fan_out"``)."""
    fan_in, fan_out = calculate_fan_in_and_fan_out(tensor)
    if mode == "fan_in":
        return fan_in
    if mode == "fan_out":
        return fan_out
    raise ValueError(f"calculate_correct_fan: mode must be 'fan_in' or 'fan_out'; got {mode!r}")


def xavier_uniform_(tensor: Tensor, gain: float = 1.0) -> None:
    """``U[-a, a]`` with ``a = gain * sqrt(6 / (fan_in + fan_out))`` (Glorot & Bengio)."""
    fan_in, fan_out = calculate_fan_in_and_fan_out(tensor)
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    uniform_(tensor, -bound, bound)


def xavier_normal_(tensor: Tensor, gain: float = 1.0) -> None:
    """``N(0, std**2)`` with ``std = gain * sqrt(2 / (fan_in + fan_out))``."""
    fan_in, fan_out = calculate_fan_in_and_fan_out(tensor)
    normal_(tensor, 0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)))


def msra_uniform_(tensor: Tensor, a: float = 0, mode: str = "fan_in",
                  nonlinearity: str = "leaky_relu") -> None:
    """``U[-b, b]`` with ``b = sqrt(3) * gain / sqrt(fan)`` (He et al.), gain from
    :func:`calculate_gain` with ``a`` as the leaky_relu slope."""
    std = calculate_gain(nonlinearity, a) / math.sqrt(calculate_correct_fan(tensor, mode))
    bound = math.sqrt(3.0) * std
    uniform_(tensor, -bound, bound)


def msra_normal_(tensor: Tensor, a: float = 0, mode: str = "fan_in",
                 nonlinearity: str = "leaky_relu") -> None:
    """``N(0, std**2)`` with ``std = gain / sqrt(fan)`` (He et al.)."""
    std = calculate_gain(nonlinearity, a) / math.sqrt(calculate_correct_fan(tensor, mode))
    normal_(tensor, 0.0, std)
