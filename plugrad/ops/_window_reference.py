"""float64 references of convolution and pooling and their gradient ops, as direct loops.

Each loops over kernel offsets with NumPy (no im2col, nothing shared with plugrad's
decompositions or kernels), so the conformance suite checks both against something independent.
"""
from __future__ import annotations

import numpy as np

__all__ = ["conv2d_reference", "conv2d_bias_reference", "conv2d_grad_input_reference",
           "conv2d_grad_weight_reference", "max_pool2d_reference", "max_pool2d_grad_reference",
           "avg_pool2d_reference", "avg_pool2d_grad_reference"]


# -- sliding windows, written directly ---------------------------------------------------------
def _out(size: int, k: int, s: int, p: int, d: int = 1) -> int:
    return (size + 2 * p - d * (k - 1) - 1) // s + 1


def _pad(x: np.ndarray, padding, value: float = 0.0) -> np.ndarray:
    ph, pw = padding
    return np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=value)


def _window(a: np.ndarray, i: int, j: int, out_hw, stride, dilation=(1, 1)) -> np.ndarray:
    """The view of ``a`` that kernel offset (i, j) reads for every output position."""
    (oh, ow), (sh, sw), (dh, dw) = out_hw, stride, dilation
    return a[:, :, i * dh:i * dh + sh * (oh - 1) + 1:sh, j * dw:j * dw + sw * (ow - 1) + 1:sw]


def conv2d_reference(x, w, *, stride, padding, dilation, groups):
    return _convolve(x, w, None, stride, padding, dilation, groups)


def conv2d_bias_reference(x, w, b, *, stride, padding, dilation, groups):
    return _convolve(x, w, b, stride, padding, dilation, groups)


def _convolve(x, w, b, stride, padding, dilation, groups):
    n, _, h, wd = x.shape
    o, cg, kh, kw = w.shape
    out_hw = (_out(h, kh, stride[0], padding[0], dilation[0]),
              _out(wd, kw, stride[1], padding[1], dilation[1]))
    xp = _pad(x.astype(np.float64), padding)
    out = np.zeros((n, o) + out_hw)
    og = o // groups
    for gi in range(groups):
        xs, ws = xp[:, gi * cg:(gi + 1) * cg], w[gi * og:(gi + 1) * og].astype(np.float64)
        for i in range(kh):
            for j in range(kw):
                patch = _window(xs, i, j, out_hw, stride, dilation)
                out[:, gi * og:(gi + 1) * og] += np.einsum("nchw,oc->nohw", patch, ws[:, :, i, j])
    if b is not None:
        out += b.astype(np.float64)
    return out


def conv2d_grad_input_reference(g, w, *, input_shape, stride, padding, dilation, groups):
    n, c, h, wd = input_shape
    o, cg, kh, kw = w.shape
    out_hw = g.shape[2:]
    grad = np.zeros((n, c, h + 2 * padding[0], wd + 2 * padding[1]))
    og = o // groups
    for gi in range(groups):
        gs, ws = g[:, gi * og:(gi + 1) * og].astype(np.float64), w[gi * og:(gi + 1) * og]
        for i in range(kh):
            for j in range(kw):
                target = _window(grad[:, gi * cg:(gi + 1) * cg], i, j, out_hw, stride, dilation)
                target += np.einsum("nohw,oc->nchw", gs, ws[:, :, i, j].astype(np.float64))
    return grad[:, :, padding[0]:padding[0] + h, padding[1]:padding[1] + wd]


def conv2d_grad_weight_reference(g, x, *, weight_shape, stride, padding, dilation, groups):
    o, cg, kh, kw = weight_shape
    out_hw = g.shape[2:]
    xp = _pad(x.astype(np.float64), padding)
    grad = np.zeros(tuple(weight_shape))
    og = o // groups
    for gi in range(groups):
        gs, xs = g[:, gi * og:(gi + 1) * og].astype(np.float64), xp[:, gi * cg:(gi + 1) * cg]
        for i in range(kh):
            for j in range(kw):
                patch = _window(xs, i, j, out_hw, stride, dilation)
                grad[gi * og:(gi + 1) * og, :, i, j] = np.einsum("nohw,nchw->oc", gs, patch)
    return grad


# -- pooling ----------------------------------------------------------------------------------
def _pool_hw(shape, kernel_size, stride, padding) -> tuple:
    return tuple(_out(size, k, s, p) for size, k, s, p in
                 zip(shape[2:], kernel_size, stride, padding))


def max_pool2d_reference(x, *, kernel_size, stride, padding):
    out_hw = _pool_hw(x.shape, kernel_size, stride, padding)
    xp = _pad(x, padding, -np.inf)
    out = np.full(x.shape[:2] + out_hw, -np.inf)
    for i in range(kernel_size[0]):
        for j in range(kernel_size[1]):
            out = np.maximum(out, _window(xp, i, j, out_hw, stride))
    return out


def max_pool2d_grad_reference(g, x, y, *, kernel_size, stride, padding):
    out_hw = y.shape[2:]
    xp = _pad(x.astype(np.float64), padding, -np.inf)
    grad = np.zeros(xp.shape)
    taken = np.zeros(y.shape, dtype=bool)
    for i in range(kernel_size[0]):
        for j in range(kernel_size[1]):
            hit = (_window(xp, i, j, out_hw, stride) == y) & ~taken
            target = _window(grad, i, j, out_hw, stride)
            target += np.where(hit, g, 0.0)
            taken |= hit
    h, w = x.shape[2:]
    return grad[:, :, padding[0]:padding[0] + h, padding[1]:padding[1] + w]


def _counts(in_hw, kernel_size, stride, padding, out_hw, count_include_pad) -> np.ndarray:
    if count_include_pad:
        return np.full(out_hw, float(kernel_size[0] * kernel_size[1]))
    inside = _pad(np.ones((1, 1) + tuple(in_hw)), padding)
    total = np.zeros((1, 1) + tuple(out_hw))
    for i in range(kernel_size[0]):
        for j in range(kernel_size[1]):
            total = total + _window(inside, i, j, out_hw, stride)
    return total[0, 0]


def avg_pool2d_reference(x, *, kernel_size, stride, padding, count_include_pad):
    out_hw = _pool_hw(x.shape, kernel_size, stride, padding)
    xp = _pad(x.astype(np.float64), padding)
    total = np.zeros(x.shape[:2] + out_hw)
    for i in range(kernel_size[0]):
        for j in range(kernel_size[1]):
            total += _window(xp, i, j, out_hw, stride)
    counts = _counts(x.shape[2:], kernel_size, stride, padding, out_hw, count_include_pad)
    return (total / counts)


def avg_pool2d_grad_reference(g, *, input_shape, kernel_size, stride, padding,
                              count_include_pad):
    out_hw = g.shape[2:]
    h, w = input_shape[2:]
    counts = _counts((h, w), kernel_size, stride, padding, out_hw, count_include_pad)
    share = g.astype(np.float64) / counts
    grad = np.zeros(tuple(input_shape[:2]) + (h + 2 * padding[0], w + 2 * padding[1]))
    for i in range(kernel_size[0]):
        for j in range(kernel_size[1]):
            target = _window(grad, i, j, out_hw, stride)
            target += share
    return grad[:, :, padding[0]:padding[0] + h, padding[1]:padding[1] + w]

