"""Pooling functions with MegEngine's signatures (``F.max_pool2d``, ``F.avg_pool2d``, adaptive).

Adaptive pooling follows MegEngine: it is ordinary pooling with ``stride = in // out`` and
``kernel = in - (out - 1) * stride`` on each axis, so windows are equal-sized (they may overlap
when ``out`` does not divide ``in``).
"""
from __future__ import annotations

from typing import Any

from plugrad.core.dispatch import apply, spec_of
from plugrad.core.registry import OPS
from plugrad.core.tensor import Tensor
from plugrad.functional._utils import as_tensor, pair, to_float

__all__ = ["max_pool2d", "avg_pool2d", "adaptive_avg_pool2d", "adaptive_max_pool2d"]

_AVG_MODES = {"average": True, "average_count_include_padding": True,
              "average_count_exclude_padding": False}


def _window_args(op: str, kernel_size: Any, stride: Any, padding: Any) -> dict:
    """The op's attributes from MegEngine's arguments (``stride`` defaults to the kernel)."""
    kernel = pair(op, "kernel_size", kernel_size, 1)
    stride = kernel if stride is None else pair(op, "stride", stride, 1)
    return dict(kernel_size=kernel, stride=stride, padding=pair(op, "padding", padding, 0))


def max_pool2d(inp: Tensor, kernel_size: Any, stride: Any = None, padding: Any = 0) -> Tensor:
    """Maximum over each window of an NCHW input; ``stride`` defaults to ``kernel_size``.

    Example:
        >>> max_pool2d(Tensor(np.arange(16.).reshape(1, 1, 4, 4)), 2).numpy().ravel()
        array([ 5.,  7., 13., 15.], dtype=float32)
    """
    x = to_float(as_tensor(inp))
    attrs = _window_args("max_pool2d", kernel_size, stride, padding)
    OPS["max_pool2d"].rule(spec_of(x), **attrs)  # check() without its wrapper: a LeNet step runs it
    return apply("max_pool2d", x, **attrs)


def avg_pool2d(inp: Tensor, kernel_size: Any, stride: Any = None, padding: Any = 0,
               mode: str = "average_count_exclude_padding") -> Tensor:
    """Mean over each window of an NCHW input.

    Args:
        mode: ``"average_count_exclude_padding"`` divides by the cells inside the input;
            ``"average"`` by the full window size (padding counts as zeros).
    """
    if mode not in _AVG_MODES:
        raise ValueError(f"avg_pool2d: mode must be one of {sorted(_AVG_MODES)}; got {mode!r}")
    x = to_float(as_tensor(inp))
    attrs = _window_args("avg_pool2d", kernel_size, stride, padding)
    attrs["count_include_pad"] = _AVG_MODES[mode]
    OPS["avg_pool2d"].rule(spec_of(x), **attrs)
    return apply("avg_pool2d", x, **attrs)


def _adaptive_window(op: str, x: Tensor, oshp: Any) -> tuple[tuple[int, int], tuple[int, int]]:
    if x.ndim != 4:
        raise ValueError(f"{op}: expected a 4-D input (N, C, H, W); got shape {x.shape}")
    out_hw = pair(op, "oshp", oshp, 1)
    if any(o > i for o, i in zip(out_hw, x.shape[2:])):
        raise ValueError(f"{op}: output size {out_hw} is larger than the input's spatial size "
                         f"{x.shape[2:]}")
    (h, w), (oh, ow) = x.shape[2:], out_hw
    stride = (h // oh, w // ow)
    kernel = (h - (oh - 1) * stride[0], w - (ow - 1) * stride[1])
    return kernel, stride


def adaptive_avg_pool2d(inp: Tensor, oshp: Any) -> Tensor:
    """Average pooling to a fixed output size ``oshp`` (an int or (OH, OW))."""
    x = to_float(as_tensor(inp))
    kernel, stride = _adaptive_window("adaptive_avg_pool2d", x, oshp)
    return apply("avg_pool2d", x, kernel_size=kernel, stride=stride, padding=(0, 0),
                 count_include_pad=False)


def adaptive_max_pool2d(inp: Tensor, oshp: Any) -> Tensor:
    """Max pooling to a fixed output size ``oshp`` (an int or (OH, OW))."""
    x = to_float(as_tensor(inp))
    kernel, stride = _adaptive_window("adaptive_max_pool2d", x, oshp)
    return apply("max_pool2d", x, kernel_size=kernel, stride=stride, padding=(0, 0))
