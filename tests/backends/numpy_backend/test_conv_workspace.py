"""conv2d on an empty batch, and the forward's im2col workspace bounded by banding."""
from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

import plugrad.functional as F
from plugrad import Parameter
from plugrad.autodiff import GradManager
from plugrad.backends.numpy_backend import conv


def _reference_conv(x, w, b, stride, padding, dilation):
    """Direct float64 convolution by loops over the kernel offsets (groups = 1)."""
    x = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (padding[0],) * 2, (padding[1],) * 2))
    n, _, h, wd = x.shape
    o, _, kh, kw = w.shape
    oh = (h - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    ow = (wd - dilation[1] * (kw - 1) - 1) // stride[1] + 1
    out = np.zeros((n, o, oh, ow))
    for i in range(kh):
        for j in range(kw):
            r, s = i * dilation[0], j * dilation[1]
            patch = x[:, :, r:r + stride[0] * (oh - 1) + 1:stride[0],
                      s:s + stride[1] * (ow - 1) + 1:stride[1]]
            out += np.einsum("nchw,oc->nohw", patch, w[:, :, i, j].astype(np.float64))
    return out + b.reshape(1, -1, 1, 1)


@pytest.mark.parametrize("stride", [1, 2])
def test_an_empty_batch_goes_through_conv2d_forward_and_backward(stride):
    x = Parameter(np.zeros((0, 3, 12, 12), "float32"))
    w = Parameter(np.ones((4, 3, 3, 3), "float32"))
    gm = GradManager().attach([x, w])
    with gm:
        y = F.conv2d(x, w, stride=stride, padding=1)
        gm.backward(y.sum())
    assert y.shape == (0, 4, 12 // stride, 12 // stride)
    assert x.grad.shape == (0, 3, 12, 12)
    np.testing.assert_array_equal(w.grad.numpy(), np.zeros((4, 3, 3, 3)))  # no sample, no grad


@pytest.mark.parametrize("stride, padding, dilation", [((1, 1), (3, 2), (1, 1)),
                                                       ((2, 3), (1, 0), (1, 2))])
def test_a_convolution_too_big_for_the_workspace_runs_in_bands(monkeypatch, stride, padding,
                                                               dilation):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 60, 50)).astype("float32")
    w = rng.standard_normal((4, 3, 9, 7)).astype("float32")
    b = rng.standard_normal(4).astype("float32")
    kernel = conv.kernels(np)["conv2d"]
    attrs = dict(stride=stride, padding=padding, dilation=dilation, groups=1)
    whole = kernel(x, w, b, **attrs)  # the same kernel, its workspace not capped yet
    monkeypatch.setattr(conv, "WORKSPACE_FLOOR", 1)  # the cap is now input + output bytes
    tracemalloc.start()
    banded = kernel(x, w, b, **attrs)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    columns = 3 * 9 * 7 * 2 * 60 * 56 * 4  # what one block of whole-batch columns would take
    assert peak < 4 * (x.nbytes + banded.nbytes) < columns / 4
    np.testing.assert_allclose(banded, _reference_conv(x, w, b, stride, padding, dilation),
                               rtol=1e-4, atol=1e-4)
    # bands are GEMMs of other widths: equal to float32 rounding of the largest output
    np.testing.assert_allclose(banded, whole, rtol=0, atol=2e-6 * np.abs(whole).max())


def test_out_of_memory_is_a_memory_error_naming_the_op_and_the_size():
    with pytest.raises(MemoryError,
                       match=r"^zeros: full: out of memory on .*\(1000000, 1000000\)"):
        F.zeros((10**6, 10**6))
