"""The numpy convolutions copy their im2col columns a pass of a few blocks at a time
(``CPU_BLOCK_BYTES["pass"]``): several passes must give the one-pass results (the same GEMMs, so
the forward and the weight gradient to the bit), and an empty batch must work.

Kernels are built over a NumPy proxy that counts ``matmul`` calls, so each test asserts the
number of passes it really took.
"""
from __future__ import annotations

import numpy as np
import pytest

from plugrad.backends.numpy_backend import conv
from tests.kernels.test_conv_pool_kernels import ref_conv, ref_conv_grads


class CountingNumpy:
    """numpy, with its ``matmul`` calls counted (one per pass in the conv kernels)."""

    def __init__(self) -> None:
        self.matmuls = 0

    def __getattr__(self, name):
        return getattr(np, name)

    def matmul(self, *args, **kwargs):
        self.matmuls += 1
        return np.matmul(*args, **kwargs)


def counted_kernels(pass_bytes: int | None):
    """Kernels whose blocks are single samples (1-byte block budgets), ``pass_bytes`` a pass."""
    xp = CountingNumpy()
    budgets = {"fwd": 1, "grad_weight": 1, "grad_input": 1, "pass": pass_bytes}
    return xp, conv._make_kernels(xp, budgets, half_in_float32=True)


# (x shape, w shape, stride, padding, dilation, groups): 3x3 and 5x5, padded, strided, grouped
CASES = [
    ((6, 3, 10, 10), (4, 3, 3, 3), (1, 1), (1, 1), (1, 1), 1),
    ((6, 2, 12, 11), (3, 2, 5, 5), (1, 1), (2, 2), (1, 1), 1),
    ((6, 4, 9, 9), (6, 2, 3, 3), (2, 2), (1, 1), (1, 1), 2),
    ((4, 2, 9, 8), (2, 2, 3, 3), (1, 2), (1, 0), (2, 1), 1),
]


def _inputs(case, dtype=np.float32):
    x_shape, w_shape, stride, padding, dilation, groups = case
    rng = np.random.default_rng(3)
    x = rng.standard_normal(x_shape).astype(dtype)
    w = rng.standard_normal(w_shape).astype(dtype)
    attrs = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    return x, w, attrs


@pytest.mark.parametrize("case", CASES)
def test_several_passes_equal_one_pass_and_the_reference(case):
    x, w, attrs = _inputs(case)
    one_xp, one = counted_kernels(None)  # every block in one pass: one batched GEMM
    many_xp, many = counted_kernels(1)  # a pass per block
    n = x.shape[0]
    b = np.random.default_rng(4).standard_normal((1, w.shape[0], 1, 1)).astype(np.float32)

    y = one["conv2d"](x, w, b, **attrs)
    assert one_xp.matmuls == 1
    y_many = many["conv2d"](x, w, b, **attrs)
    assert many_xp.matmuls == n
    np.testing.assert_array_equal(y_many, y)
    np.testing.assert_allclose(y_many, ref_conv(x, w, **attrs) + b, rtol=1e-4, atol=1e-4)

    g = np.random.default_rng(5).standard_normal(y.shape).astype(np.float32)
    gx_ref, gw_ref = ref_conv_grads(g, x, w, **attrs)
    one_xp.matmuls = many_xp.matmuls = 0
    gw = one["conv2d_grad_weight"](g, x, weight_shape=w.shape, **attrs)
    gw_many = many["conv2d_grad_weight"](g, x, weight_shape=w.shape, **attrs)
    assert (one_xp.matmuls, many_xp.matmuls) == (1, n)
    np.testing.assert_array_equal(gw_many, gw)  # the same block products, summed alike
    np.testing.assert_allclose(gw_many, gw_ref, rtol=1e-4, atol=1e-4)

    one_xp.matmuls = many_xp.matmuls = 0
    gx = one["conv2d_grad_input"](g, w, input_shape=x.shape, **attrs)
    gx_many = many["conv2d_grad_input"](g, w, input_shape=x.shape, **attrs)
    assert (one_xp.matmuls, many_xp.matmuls) == (1, n)
    np.testing.assert_allclose(gx_many, gx, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(gx_many, gx_ref, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("case", CASES[:3])
def test_an_empty_batch(case):
    x, w, attrs = _inputs(case)
    kernels = conv.kernels(np)
    empty = x[:0]
    y = kernels["conv2d"](empty, w, **attrs)
    full = kernels["conv2d"](x, w, **attrs)
    assert y.shape == (0,) + full.shape[1:]
    gw = kernels["conv2d_grad_weight"](y, empty, weight_shape=w.shape, **attrs)
    np.testing.assert_array_equal(gw, np.zeros(w.shape, np.float32))
    gx = kernels["conv2d_grad_input"](y, w, input_shape=empty.shape, **attrs)
    assert gx.shape == empty.shape
