"""Convolution and linear layers as functions (``F.conv2d``, ``F.conv_transpose2d``, ``F.linear``).

Signatures follow MegEngine. Arguments are normalised here and checked by the ops' declared
shape rules, so the ops and kernels receive valid shapes; a grouped weight may be given in
MegEngine's 5-D layout ``(groups, O // groups, C // groups, kh, kw)`` or already merged into 4-D
``(O, C // groups, kh, kw)``.
"""
from __future__ import annotations

import math
from typing import Any

from plugrad.core.dispatch import apply, spec_of
from plugrad.core.registry import OPS
from plugrad.core.tensor import Tensor
from plugrad.functional._utils import as_tensor, float_pair, pair, single

__all__ = ["conv1d", "conv2d", "conv_transpose2d", "linear"]

IntPair = Any  # an int or a pair of ints


def _check_modes(op: str, conv_mode: str, compute_mode: str) -> None:
    if conv_mode not in ("cross_correlation", "CROSS_CORRELATION"):
        raise ValueError(f"{op}: conv_mode {conv_mode!r} is not supported; expected "
                         f"'cross_correlation'")
    if compute_mode not in ("default", "DEFAULT", "float32", "FLOAT32"):
        raise ValueError(f"{op}: compute_mode {compute_mode!r} is not supported; expected "
                         f"'default' or 'float32'")


def _merge_groups(op: str, weight: Tensor, groups: int) -> Tensor:
    """MegEngine's 5-D grouped weight as the 4-D layout the ops use (a free reshape)."""
    if weight.ndim == 5:
        if weight.shape[0] != groups:
            raise ValueError(f"{op}: a 5-D weight of shape {weight.shape} has {weight.shape[0]} "
                             f"groups on axis 0, but groups={groups}")
        g, a, b, kh, kw = weight.shape
        return apply("reshape", weight, shape=(g * a, b, kh, kw))
    if weight.ndim != 4:
        raise ValueError(f"{op}: weight must be 4-D (out, in // groups, kh, kw) or, with groups, "
                         f"5-D (groups, out // groups, in // groups, kh, kw); got shape "
                         f"{weight.shape}")
    return weight


def _check_input(op: str, x: Tensor) -> None:
    if x.ndim != 4:
        raise ValueError(f"{op}: expected a 4-D input (N, C, H, W); got shape {x.shape}")


def _bias(op: str, bias: Any, like: Tensor, shape: tuple[int, ...]) -> Tensor:
    """``bias`` as a tensor of ``shape`` (one value per output) in ``like``'s dtype and device."""
    bias = as_tensor(bias, like)
    count = math.prod(shape)
    if bias.size != count:
        raise ValueError(f"{op}: bias of shape {bias.shape} has {bias.size} values; expected "
                         f"{count}, one per output, shaped {shape}")
    if bias._dtype != like._dtype:
        bias = apply("cast", bias, dtype=like._dtype)
    if bias._data.shape != shape:
        bias = apply("reshape", bias, shape=shape)
    return bias


def _channel_bias(op: str, bias: Any, like: Tensor, channels: int) -> Tensor:
    return _bias(op, bias, like, (1, channels, 1, 1))


def _add_bias(op: str, out: Tensor, bias: Any) -> Tensor:
    if bias is None:
        return out
    return out + _channel_bias(op, bias, out, out.shape[1])


def conv2d(inp: Tensor, weight: Tensor, bias: Tensor | None = None, stride: IntPair = 1,
           padding: IntPair = 0, dilation: IntPair = 1, groups: int = 1,
           conv_mode: str = "cross_correlation", compute_mode: str = "default") -> Tensor:
    """2-D cross-correlation of an NCHW input with ``weight`` (plus ``bias``).

    Args:
        inp: (N, C, H, W).
        weight: (O, C, kh, kw); with ``groups`` > 1 either (groups, O // groups, C // groups,
            kh, kw) as MegEngine stores it, or (O, C // groups, kh, kw).
        bias: (1, O, 1, 1) or (O,).
        stride, padding, dilation: an int or an (h, w) pair.
        groups: input and output channels are split into this many independent groups.

    Returns:
        (N, O, OH, OW) with ``OH = (H + 2 * ph - dh * (kh - 1) - 1) // sh + 1``.

    Example:
        >>> conv2d(Tensor(np.ones((1, 1, 3, 3))), Tensor(np.ones((1, 1, 2, 2)))).shape
        (1, 1, 2, 2)
    """
    op = "conv2d"
    _check_modes(op, conv_mode, compute_mode)
    x, w = float_pair(op, as_tensor(inp), weight)
    stride, padding = pair(op, "stride", stride, 1), pair(op, "padding", padding, 0)
    dilation = pair(op, "dilation", dilation, 1)
    w = _merge_groups(op, w, groups)
    attrs = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    # The op's rule checks the call (called directly, as check() would: a LeNet step runs it).
    out_channels = OPS[op].rule(spec_of(x), spec_of(w), **attrs).shape[1]
    if bias is None:
        return apply(op, x, w, **attrs)
    return apply("conv2d_bias", x, w, _channel_bias(op, bias, x, out_channels), **attrs)


def conv1d(inp: Tensor, weight: Tensor, bias: Tensor | None = None, stride: int = 1,
           padding: int = 0, dilation: int = 1, groups: int = 1,
           conv_mode: str = "cross_correlation", compute_mode: str = "default") -> Tensor:
    """1-D cross-correlation of an NCL input: :func:`conv2d` over a unit height.

    Args:
        inp: (N, C, L).
        weight: (O, C // groups, k), or with groups (groups, O // groups, C // groups, k).
        bias: (1, O, 1) or (O,).

    Returns:
        (N, O, OL) with ``OL = (L + 2 * padding - dilation * (k - 1) - 1) // stride + 1``.

    Example:
        >>> conv1d(Tensor(np.ones((1, 1, 4))), Tensor(np.ones((1, 1, 2)))).numpy()
        array([[[2., 2., 2.]]], dtype=float32)
    """
    op = "conv1d"
    x, w = float_pair(op, as_tensor(inp), weight)
    if x.ndim != 3:
        raise ValueError(f"{op}: expected a 3-D input (N, C, L); got shape {x.shape}")
    if w.ndim not in (3, 4):
        raise ValueError(f"{op}: weight must be 3-D (out, in // groups, k) or, with groups, "
                         f"4-D (groups, out // groups, in // groups, k); got shape {w.shape}")
    stride, padding = single(op, "stride", stride, 1), single(op, "padding", padding, 0)
    dilation = single(op, "dilation", dilation, 1)
    if isinstance(groups, bool) or not isinstance(groups, int) or groups < 1:
        raise ValueError(f"{op}: groups must be a positive int; got {groups!r}")
    if w.ndim == 4 and w.shape[0] != groups:
        raise ValueError(f"{op}: a 4-D weight of shape {w.shape} has {w.shape[0]} groups on "
                         f"axis 0, but groups={groups}")
    group_channels = w.shape[-2]
    if group_channels * groups != x.shape[1]:
        raise ValueError(f"{op}: the input has {x.shape[1]} channels (shape {x.shape}) but the "
                         f"weight of shape {w.shape} with groups={groups} expects "
                         f"{group_channels * groups}; the weight's axis -2 must be "
                         f"in_channels // groups")
    span = dilation * (w.shape[-1] - 1) + 1
    if x.shape[2] + 2 * padding < span:
        raise ValueError(f"{op}: the input's length {x.shape[2]} with padding {padding} is "
                         f"shorter than the kernel's span {span} (k={w.shape[-1]}, "
                         f"dilation={dilation})")
    w2 = apply("reshape", w, shape=w.shape[:-1] + (1, w.shape[-1]))
    x2 = apply("reshape", x, shape=x.shape[:2] + (1, x.shape[2]))
    if bias is not None:
        out_channels = w.shape[0] * w.shape[1] if w.ndim == 4 else w.shape[0]
        bias = _bias(op, bias, x, (1, out_channels, 1, 1))
    out = conv2d(x2, w2, bias, (1, stride), (0, padding), (1, dilation), groups, conv_mode,
                 compute_mode)
    return apply("reshape", out, shape=out.shape[:2] + (out.shape[3],))


def conv_transpose2d(inp: Tensor, weight: Tensor, bias: Tensor | None = None,
                     stride: IntPair = 1, padding: IntPair = 0, output_padding: IntPair = 0,
                     dilation: IntPair = 1, groups: int = 1,
                     conv_mode: str = "cross_correlation",
                     compute_mode: str = "default") -> Tensor:
    """The transposed convolution: the gradient of :func:`conv2d` with respect to its input.

    Args:
        inp: (N, C, H, W).
        weight: (C, O, kh, kw); with groups, (groups, C // groups, O // groups, kh, kw) or
            (C, O // groups, kh, kw).
        output_padding: extra rows/columns at the bottom/right of the output, each smaller
            than the stride (picks one of the input sizes a strided conv2d maps to H).

    Returns:
        (N, O, OH, OW) with ``OH = (H - 1) * sh - 2 * ph + dh * (kh - 1) + 1 + oph``.
    """
    op = "conv_transpose2d"
    _check_modes(op, conv_mode, compute_mode)
    x, w = float_pair(op, as_tensor(inp), weight)
    stride, padding = pair(op, "stride", stride, 1), pair(op, "padding", padding, 0)
    dilation = pair(op, "dilation", dilation, 1)
    output_padding = pair(op, "output_padding", output_padding, 0)
    if not isinstance(groups, int) or groups < 1:
        raise ValueError(f"{op}: groups must be a positive int; got {groups!r}")
    _check_input(op, x)
    w = _merge_groups(op, w, groups)
    channels, (in_channels, group_out, kh, kw) = x.shape[1], w.shape
    if channels != in_channels:
        raise ValueError(f"{op}: the input has {channels} channels (shape {x.shape}) but the "
                         f"weight of shape {w.shape} expects {in_channels} (its axis 0)")
    if in_channels % groups:
        raise ValueError(f"{op}: {in_channels} input channels cannot be split into {groups} "
                         f"groups")
    if any(p >= max(s, d) for p, s, d in zip(output_padding, stride, dilation)):
        raise ValueError(f"{op}: output_padding {output_padding} must be smaller than the "
                         f"stride {stride} or the dilation {dilation}")
    out_hw = tuple((size - 1) * s - 2 * p + d * (k - 1) + 1 + extra for size, s, p, d, k, extra
                   in zip(x.shape[2:], stride, padding, dilation, (kh, kw), output_padding))
    if min(out_hw) <= 0:
        raise ValueError(f"{op}: padding {padding} removes the whole output; the output would "
                         f"be {out_hw}")
    input_shape = (x.shape[0], group_out * groups) + out_hw
    out = apply("conv2d_grad_input", x, w, input_shape=input_shape, stride=stride,
                padding=padding, dilation=dilation, groups=groups)
    return _add_bias(op, out, bias)


def linear(inp: Tensor, weight: Tensor, bias: Tensor | None = None,
           compute_mode: str = "default") -> Tensor:
    """``inp @ weight.T + bias``: a fully connected layer over the last axis.

    Args:
        inp: (..., in_features).
        weight: (out_features, in_features).
        bias: (out_features,).

    Example:
        >>> linear(Tensor([[1., 2.]]), Tensor([[1., 1.], [0., 1.]]), Tensor([0., 1.]))
        Tensor([[3. 3.]], device=xpux:0)
    """
    op = "linear"
    x, w = float_pair(op, as_tensor(inp), weight)
    OPS[op].rule(spec_of(x), spec_of(w))  # the bias is shaped to match by _bias
    if bias is None:
        return apply(op, x, w)
    return apply(op, x, w, _bias(op, bias, x, (w.shape[0],)))
