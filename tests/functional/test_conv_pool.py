"""F.conv2d, F.conv_transpose2d and the pooling functions against float64 loop references,
with gradients checked by finite differences."""
import numpy as np
import pytest

import plugrad.functional as F
from tests.helpers.numerics import (
    assert_grads_match,
    ref_conv2d,
    ref_conv_transpose2d,
    ref_pool,
    t64,
)

RNG = np.random.default_rng(7)


def rand(*shape):
    return RNG.standard_normal(shape)


CONV_CASES = [
    # x shape, w shape (O, C // groups, kh, kw), stride, padding, dilation, groups
    ((2, 3, 7, 6), (4, 3, 3, 2), (1, 1), (0, 0), (1, 1), 1),
    ((1, 2, 8, 9), (3, 2, 3, 3), (2, 1), (1, 2), (1, 2), 1),
    ((2, 4, 6, 6), (6, 2, 3, 3), (2, 2), (1, 1), (1, 1), 2),
    ((1, 3, 5, 5), (3, 1, 3, 3), (1, 1), (1, 1), (2, 2), 3),  # depthwise, dilated
    ((2, 3, 4, 5), (5, 3, 1, 1), (1, 1), (0, 0), (1, 1), 1),  # 1x1
]


@pytest.mark.parametrize("xs, ws, stride, padding, dilation, groups", CONV_CASES)
def test_conv2d_matches_loops(xs, ws, stride, padding, dilation, groups):
    x, w, b = rand(*xs), rand(*ws), rand(1, ws[0], 1, 1)
    out = F.conv2d(t64(x), t64(w), t64(b), stride, padding, dilation, groups)
    want = ref_conv2d(x, w, stride, padding, dilation, groups) + b
    assert out.shape == want.shape and out.dtype == np.float64
    np.testing.assert_allclose(out.numpy(), want, rtol=1e-10, atol=1e-10)


def test_conv2d_accepts_megengine_grouped_weight():
    x, w = rand(1, 4, 5, 5), rand(6, 2, 3, 3)
    merged = F.conv2d(t64(x), t64(w), groups=2).numpy()
    grouped = F.conv2d(t64(x), t64(w.reshape(2, 3, 2, 3, 3)), groups=2).numpy()
    np.testing.assert_array_equal(merged, grouped)


@pytest.mark.parametrize("xs, ws, stride, padding, dilation, groups",
                         [CONV_CASES[1], CONV_CASES[2], CONV_CASES[3]])
def test_conv2d_gradients_by_finite_differences(xs, ws, stride, padding, dilation, groups):
    xs = (1,) + xs[1:]
    x, w = rand(*xs), rand(*ws)
    assert_grads_match(lambda a, b: F.conv2d(a, b, None, stride, padding, dilation, groups),
                       [x, w])


TRANSPOSE_CASES = [
    # x shape, w shape (C, O // groups, kh, kw), stride, padding, output_padding, dilation, g
    ((2, 3, 4, 5), (3, 2, 3, 3), (1, 1), (0, 0), (0, 0), (1, 1), 1),
    ((1, 2, 3, 4), (2, 3, 3, 2), (2, 3), (1, 0), (1, 2), (1, 1), 1),
    ((1, 4, 3, 3), (4, 1, 2, 3), (2, 1), (0, 1), (0, 0), (2, 1), 2),
]


@pytest.mark.parametrize("xs, ws, stride, padding, output_padding, dilation, groups",
                         TRANSPOSE_CASES)
def test_conv_transpose2d_matches_scatter_reference(xs, ws, stride, padding, output_padding,
                                                    dilation, groups):
    x, w = rand(*xs), rand(*ws)
    out = F.conv_transpose2d(t64(x), t64(w), None, stride, padding, output_padding, dilation,
                             groups)
    want = ref_conv_transpose2d(x, w, stride, padding, output_padding, dilation, groups)
    assert out.shape == want.shape
    np.testing.assert_allclose(out.numpy(), want, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("case", TRANSPOSE_CASES[1:])
def test_conv_transpose2d_gradients_by_finite_differences(case):
    xs, ws, stride, padding, output_padding, dilation, groups = case
    assert_grads_match(lambda a, b: F.conv_transpose2d(a, b, None, stride, padding,
                                                       output_padding, dilation, groups),
                       [rand(*xs), rand(*ws)])


def test_conv_transpose2d_inverts_conv2d_shape():
    x = t64(rand(2, 3, 9, 8))
    w = t64(rand(5, 3, 3, 3))
    y = F.conv2d(x, w, stride=2, padding=1)
    back = F.conv_transpose2d(y, w, stride=2, padding=1, output_padding=(0, 1))
    assert back.shape == x.shape


POOL_CASES = [((2, 2), (2, 2), (0, 0)), ((3, 3), (2, 2), (1, 1)), ((2, 3), (1, 2), (1, 1)),
              ((3, 2), (3, 1), (0, 1))]


@pytest.mark.parametrize("kernel, stride, padding", POOL_CASES)
def test_max_pool2d_matches_loops(kernel, stride, padding):
    x = rand(2, 3, 7, 8)
    out = F.max_pool2d(t64(x), kernel, stride, padding)
    want = ref_pool(x, kernel, stride, padding, lambda v, k: v.max())
    np.testing.assert_array_equal(out.numpy(), want)


@pytest.mark.parametrize("kernel, stride, padding", POOL_CASES)
@pytest.mark.parametrize("mode", ["average", "average_count_exclude_padding"])
def test_avg_pool2d_matches_loops(kernel, stride, padding, mode):
    x = rand(2, 3, 7, 8)
    out = F.avg_pool2d(t64(x), kernel, stride, padding, mode)
    if mode == "average":
        want = ref_pool(x, kernel, stride, padding, lambda v, k: v.sum() / k)
    else:
        want = ref_pool(x, kernel, stride, padding, lambda v, k: v.mean())
    np.testing.assert_allclose(out.numpy(), want, rtol=1e-12)


def test_pool_stride_defaults_to_kernel():
    x = t64(rand(1, 1, 6, 6))
    assert F.max_pool2d(x, 3).shape == (1, 1, 2, 2)
    assert F.avg_pool2d(x, 2).shape == (1, 1, 3, 3)


@pytest.mark.parametrize("kernel, stride, padding", POOL_CASES[1:3])
def test_pool_gradients_by_finite_differences(kernel, stride, padding):
    x = rand(1, 2, 6, 7)  # continuous values: no ties between window maxima
    assert_grads_match(lambda a: F.max_pool2d(a, kernel, stride, padding), [x])
    for mode in ("average", "average_count_exclude_padding"):
        assert_grads_match(lambda a, mode=mode: F.avg_pool2d(a, kernel, stride, padding, mode),
                           [x])


def test_max_pool_gradient_goes_to_the_first_maximum_on_ties():
    x = t64(np.ones((1, 1, 2, 2)))
    from plugrad.autodiff import GradManager

    gm = GradManager().attach([x])
    with gm:
        gm.backward(F.max_pool2d(x, 2).sum())
    np.testing.assert_array_equal(x.grad.numpy()[0, 0], [[1, 0], [0, 0]])


@pytest.mark.parametrize("size, oshp", [((8, 6), (4, 3)), ((7, 10), (3, 4)), ((5, 5), 1)])
def test_adaptive_pools_use_megengine_windows(size, oshp):
    x = rand(2, 3, *size)
    out_hw = (oshp, oshp) if isinstance(oshp, int) else oshp
    stride = tuple(i // o for i, o in zip(size, out_hw))
    kernel = tuple(i - (o - 1) * s for i, o, s in zip(size, out_hw, stride))
    avg = F.adaptive_avg_pool2d(t64(x), oshp)
    big = F.adaptive_max_pool2d(t64(x), oshp)
    assert avg.shape == (2, 3) + out_hw
    np.testing.assert_allclose(avg.numpy(), ref_pool(x, kernel, stride, (0, 0),
                                                     lambda v, k: v.mean()), rtol=1e-12)
    np.testing.assert_array_equal(big.numpy(), ref_pool(x, kernel, stride, (0, 0),
                                                        lambda v, k: v.max()))
    assert_grads_match(lambda a: F.adaptive_avg_pool2d(a, oshp), [rand(1, 1, *size)])


def test_float32_conv_matches_float64_reference():
    x, w = rand(4, 3, 10, 10).astype(np.float32), rand(8, 3, 5, 5).astype(np.float32)
    out = F.conv2d(x, w, padding=2)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out.numpy(), ref_conv2d(x.astype(np.float64),
                                                       w.astype(np.float64), padding=(2, 2)),
                               rtol=1e-4, atol=1e-4)
