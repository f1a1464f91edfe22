"""The numpy convolutions copy their im2col columns in one of two layouts: channels-first wide
rows (runs of whole padded image rows) or channels-last window rows (runs of ``kw * C`` values
from a channels-last copy of the input). Both must give the float64 reference, and the choice
between them follows the measured rule of ``conv._channels_last_pays``.

Kernels are built over a NumPy proxy that records the arrays ``zeros`` allocates, so each test
knows which layout really ran: only the channels-last one makes an ``(N, Hp, Wp, C)`` copy.
"""
from __future__ import annotations

import numpy as np
import pytest

from plugrad.backends.numpy_backend import conv
from tests.helpers.numerics import ref_conv2d, ref_conv_grads


class RecordingNumpy:
    """numpy, with the shapes of its ``zeros`` allocations recorded."""

    def __init__(self) -> None:
        self.zeros_shapes: list[tuple[int, ...]] = []

    def __getattr__(self, name):
        return getattr(np, name)

    def zeros(self, shape, *args, **kwargs):
        self.zeros_shapes.append(tuple(shape))
        return np.zeros(shape, *args, **kwargs)


def recorded_kernels(layout: str):
    xp = RecordingNumpy()
    return xp, conv._make_kernels(xp, conv.CPU_BLOCK_BYTES, half_in_float32=True, layout=layout)


def channels_last_copy(x_shape, padding):
    n, c, h, w = x_shape
    return (n, h + 2 * padding[0], w + 2 * padding[1], c)


# (x shape, w shape, stride, padding, dilation): LeNet's conv2, a padded 3x3, a strided one, a
# vertical dilation (the window rows stay contiguous) and a float16-sized odd case
CASES = [
    ((5, 6, 12, 12), (16, 6, 5, 5), (1, 1), (0, 0), (1, 1)),
    ((4, 8, 9, 9), (6, 8, 3, 3), (1, 1), (1, 1), (1, 1)),
    ((4, 8, 10, 9), (5, 8, 3, 3), (2, 2), (1, 1), (1, 1)),
    ((3, 4, 11, 8), (3, 4, 3, 2), (1, 2), (2, 1), (2, 1)),
]


@pytest.mark.parametrize("layout", ["channels_first", "channels_last"])
@pytest.mark.parametrize("case", CASES)
def test_both_layouts_give_the_reference(case, layout):
    x_shape, w_shape, stride, padding, dilation = case
    rng = np.random.default_rng(5)
    x, w = rng.standard_normal(x_shape), rng.standard_normal(w_shape)
    b = rng.standard_normal((1, w_shape[0], 1, 1))
    attrs = dict(stride=stride, padding=padding, dilation=dilation, groups=1)
    xp, kernels = recorded_kernels(layout)
    y = kernels["conv2d_bias"](x, w, b, **attrs)
    np.testing.assert_allclose(y, ref_conv2d(x, w, **attrs) + b, rtol=1e-10, atol=1e-10)
    g = rng.standard_normal(y.shape)
    gw = kernels["conv2d_grad_weight"](g, x, weight_shape=w.shape, **attrs)
    np.testing.assert_allclose(gw, ref_conv_grads(g, x, w, **attrs)[1], rtol=1e-10, atol=1e-10)
    copies = xp.zeros_shapes.count(channels_last_copy(x_shape, padding))
    assert copies == (2 if layout == "channels_last" else 0)  # forward and weight gradient


def test_float32_channels_last_matches_channels_first_to_rounding():
    rng = np.random.default_rng(6)
    x = rng.standard_normal((8, 6, 12, 12)).astype(np.float32)
    w = rng.standard_normal((16, 6, 5, 5)).astype(np.float32)
    attrs = dict(stride=(1, 1), padding=(0, 0), dilation=(1, 1), groups=1)
    first, last = (recorded_kernels(layout)[1] for layout in ("channels_first", "channels_last"))
    y = last["conv2d"](x, w, **attrs)
    assert y.dtype == np.float32 and y.flags.c_contiguous
    np.testing.assert_allclose(y, first["conv2d"](x, w, **attrs), rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("geometry, expected", [
    # (C, kw, stride, padded width, output width)
    ((1, 5, (1, 1), 28, 24), False),   # LeNet's conv1: a window row of 5 values is too short
    ((6, 5, (1, 1), 12, 8), True),     # LeNet's conv2: a third of every wide row is junk
    ((16, 3, (1, 1), 34, 32), False),  # SmallVGG's 32x32 layers: 6% junk
    ((32, 3, (1, 1), 18, 16), False),  # its 16x16 layers: 11% junk
    ((32, 3, (2, 2), 18, 8), True),    # its strided layer: no wide rows at all
], ids=["lenet-conv1", "lenet-conv2", "vgg-32x32", "vgg-16x16", "vgg-stride2"])
def test_the_layout_rule_on_the_benchmark_layers(geometry, expected):
    assert conv._channels_last_pays(*geometry) is expected


def test_auto_takes_channels_last_only_where_the_rule_says():
    rng = np.random.default_rng(7)
    attrs = dict(stride=(1, 1), padding=(0, 0), dilation=(1, 1), groups=1)
    for x_shape, w_shape, copies in [((2, 6, 12, 12), (16, 6, 5, 5), 1),
                                     ((2, 1, 28, 28), (6, 1, 5, 5), 0)]:
        xp, kernels = recorded_kernels("auto")
        kernels["conv2d"](rng.standard_normal(x_shape), rng.standard_normal(w_shape), **attrs)
        assert xp.zeros_shapes.count(channels_last_copy(x_shape, (0, 0))) == copies


def test_groups_and_horizontal_dilation_keep_channels_first():
    rng = np.random.default_rng(8)
    for w_shape, dilation, groups in [((4, 3, 3, 3), (1, 1), 2), ((4, 6, 3, 3), (1, 2), 1)]:
        x = rng.standard_normal((2, 6, 9, 9))
        w = rng.standard_normal(w_shape)
        attrs = dict(stride=(2, 2), padding=(1, 1), dilation=dilation, groups=groups)
        xp, kernels = recorded_kernels("channels_last")
        np.testing.assert_allclose(kernels["conv2d"](x, w, **attrs), ref_conv2d(x, w, **attrs),
                                   rtol=1e-10, atol=1e-10)
        assert channels_last_copy(x.shape, (1, 1)) not in xp.zeros_shapes
