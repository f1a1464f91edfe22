"""float64 tensors, gradients through the tape, finite differences (the conformance suite's), and
NumPy loop references that share no code with plugrad."""
from __future__ import annotations

import numpy as np

import plugrad as P
from plugrad.autodiff import GradManager
from plugrad.conformance.checks import numeric_gradient


def t64(array) -> P.Tensor:
    return P.Tensor(np.asarray(array, dtype=np.float64), dtype="float64")


def grads(fn, arrays, weights=None):
    """Gradients of sum(fn(*tensors) * weights) with respect to every float array."""
    tensors = [t64(a) if np.asarray(a).dtype.kind == "f" else P.Tensor(a) for a in arrays]
    wanted = [t for t in tensors if t.dtype == np.float64]
    gm = GradManager().attach(wanted)
    with gm:
        out = fn(*tensors)
        w = np.ones(out.shape) if weights is None else weights
        gm.backward((out * t64(w)).sum())
    missing = [i for i, t in enumerate(wanted) if t.grad is None]
    assert not missing, f"no gradient reached float input(s) {missing}"
    return [t.grad.numpy() for t in wanted]


def numeric_grads(fn, arrays, weights):
    """Central finite differences of sum(fn(*arrays) * weights) in float64, by the conformance
    suite's own implementation, for every float array."""
    floats = [i for i, a in enumerate(arrays) if np.asarray(a).dtype.kind == "f"]

    def value(*arrays):
        return fn(*[t64(a) if i in floats else P.Tensor(a) for i, a in enumerate(arrays)]).numpy()

    return numeric_gradient(value, arrays, {}, weights, floats)


def assert_grads_match(fn, arrays, rtol=1e-5, atol=1e-7, seed=0):
    weights = np.random.default_rng(seed).standard_normal(
        fn(*[t64(a) if np.asarray(a).dtype.kind == "f" else P.Tensor(a) for a in arrays]).shape)
    analytic = grads(fn, arrays, weights)
    numeric = numeric_grads(fn, arrays, weights)
    assert len(analytic) == len(numeric)
    for got, want in zip(analytic, numeric):
        np.testing.assert_allclose(got, want, rtol=rtol, atol=atol)


# -- references (loops, float64) -----------------------------------------------------------
def conv_geom(x_shape, w_shape, stride, padding, dilation):
    _, _, h, w = x_shape
    _, _, kh, kw = w_shape
    oh = (h + 2 * padding[0] - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    ow = (w + 2 * padding[1] - dilation[1] * (kw - 1) - 1) // stride[1] + 1
    return oh, ow


def window(a, n, chans, r, q, kh, kw, dilation):
    """Explicit window of a zero-padded array at top-left (r, q)."""
    return a[n, chans, r:r + dilation[0] * (kh - 1) + 1:dilation[0],
             q:q + dilation[1] * (kw - 1) + 1:dilation[1]]


def ref_conv2d(x, w, stride=(1, 1), padding=(0, 0), dilation=(1, 1), groups=1):
    x = x.astype(np.float64)
    w = w.astype(np.float64)
    n_, c, h, wd = x.shape
    o, cg, kh, kw = w.shape
    oh, ow = conv_geom(x.shape, w.shape, stride, padding, dilation)
    ph, pw = padding
    xp = np.zeros((n_, c, h + 2 * ph, wd + 2 * pw))
    xp[:, :, ph:ph + h, pw:pw + wd] = x
    og = o // groups
    y = np.zeros((n_, o, oh, ow))
    for n in range(n_):
        for oc in range(o):
            chans = slice((oc // og) * cg, (oc // og + 1) * cg)
            for i in range(oh):
                for j in range(ow):
                    win = window(xp, n, chans, i * stride[0], j * stride[1], kh, kw, dilation)
                    y[n, oc, i, j] = np.sum(win * w[oc])
    return y


def ref_conv_grads(g, x, w, stride, padding, dilation, groups):
    g = g.astype(np.float64)
    x = x.astype(np.float64)
    w = w.astype(np.float64)
    n_, c, h, wd = x.shape
    o, cg, kh, kw = w.shape
    ph, pw = padding
    xp = np.zeros((n_, c, h + 2 * ph, wd + 2 * pw))
    xp[:, :, ph:ph + h, pw:pw + wd] = x
    gxp = np.zeros_like(xp)
    gw = np.zeros_like(w)
    og = o // groups
    for n in range(n_):
        for oc in range(o):
            chans = slice((oc // og) * cg, (oc // og + 1) * cg)
            for i in range(g.shape[2]):
                for j in range(g.shape[3]):
                    r, q = i * stride[0], j * stride[1]
                    gw[oc] += g[n, oc, i, j] * window(xp, n, chans, r, q, kh, kw, dilation)
                    window(gxp, n, chans, r, q, kh, kw, dilation)[...] += g[n, oc, i, j] * w[oc]
    return gxp[:, :, ph:ph + h, pw:pw + wd], gw


def ref_conv_transpose2d(x, w, stride=(1, 1), padding=(0, 0), output_padding=(0, 0),
                         dilation=(1, 1), groups=1):
    """Scatter form: every input pixel adds weight * value to its output window."""
    n, c, h, wd = x.shape
    _, og, kh, kw = w.shape  # (C, O // groups, kh, kw)
    o = og * groups
    cg = c // groups
    oh = (h - 1) * stride[0] - 2 * padding[0] + dilation[0] * (kh - 1) + 1 + output_padding[0]
    ow = (wd - 1) * stride[1] - 2 * padding[1] + dilation[1] * (kw - 1) + 1 + output_padding[1]
    full = np.zeros((n, o, oh + 2 * padding[0], ow + 2 * padding[1]))
    for b in range(n):
        for ic in range(c):
            g = ic // cg
            for i in range(h):
                for j in range(wd):
                    for oc in range(og):
                        for p in range(kh):
                            for q in range(kw):
                                full[b, g * og + oc, i * stride[0] + p * dilation[0],
                                     j * stride[1] + q * dilation[1]] += x[b, ic, i, j] * w[
                                    ic, oc, p, q]
    return full[:, :, padding[0]:padding[0] + oh, padding[1]:padding[1] + ow]


def ref_pool(x, kernel, stride, padding, reduce):
    """``reduce(values_inside_input, window_size)`` over every window."""
    n, c, h, w = x.shape
    oh = (h + 2 * padding[0] - kernel[0]) // stride[0] + 1
    ow = (w + 2 * padding[1] - kernel[1]) // stride[1] + 1
    out = np.zeros((n, c, oh, ow))
    for i in range(oh):
        for j in range(ow):
            r0, c0 = i * stride[0] - padding[0], j * stride[1] - padding[1]
            rows = slice(max(r0, 0), min(r0 + kernel[0], h))
            cols = slice(max(c0, 0), min(c0 + kernel[1], w))
            for b in range(n):
                for ch in range(c):
                    out[b, ch, i, j] = reduce(x[b, ch, rows, cols], kernel[0] * kernel[1])
    return out
