"""Shared helpers for the nn tests: float64 tensors, gradients, finite differences, and
NumPy loop references that share no code with plugrad."""
from __future__ import annotations

import numpy as np

import plugrad as P
from plugrad.autodiff import GradManager
from plugrad.core.registry import OPS


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


def numeric_grads(fn, arrays, weights=None, eps=1e-6):
    """Central finite differences of sum(fn(*arrays) * weights), float64."""
    arrays = [np.array(a, dtype=np.float64) if np.asarray(a).dtype.kind == "f" else a
              for a in arrays]

    def value():
        tensors = [t64(a) if a.dtype.kind == "f" else P.Tensor(a) for a in arrays]
        out = fn(*tensors).numpy()
        w = np.ones(out.shape) if weights is None else weights
        return float((out * w).sum())

    result = []
    for a in arrays:
        if a.dtype.kind != "f":
            continue
        g = np.zeros_like(a)
        for index in np.ndindex(a.shape):
            keep = a[index]
            a[index] = keep + eps
            up = value()
            a[index] = keep - eps
            down = value()
            a[index] = keep
            g[index] = (up - down) / (2 * eps)
        result.append(g)
    return result


def assert_grads_match(fn, arrays, rtol=1e-5, atol=1e-7, seed=0):
    weights = np.random.default_rng(seed).standard_normal(
        fn(*[t64(a) if np.asarray(a).dtype.kind == "f" else P.Tensor(a) for a in arrays]).shape)
    analytic = grads(fn, arrays, weights)
    numeric = numeric_grads(fn, arrays, weights)
    assert len(analytic) == len(numeric)
    for got, want in zip(analytic, numeric):
        np.testing.assert_allclose(got, want, rtol=rtol, atol=atol)


def decomposed(name):
    """Call op ``name`` through its decomposition, bypassing any fused kernel."""
    definition = OPS[name].decomposition
    return lambda *tensors, **attrs: definition(*tensors, **attrs)


# -- references (loops, float64) -----------------------------------------------------------
def ref_conv2d(x, w, stride=(1, 1), padding=(0, 0), dilation=(1, 1), groups=1):
    n, c, h, wd = x.shape
    o, cg, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (padding[0],) * 2, (padding[1],) * 2))
    oh = (h + 2 * padding[0] - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    ow = (wd + 2 * padding[1] - dilation[1] * (kw - 1) - 1) // stride[1] + 1
    out = np.zeros((n, o, oh, ow))
    og = o // groups
    for b in range(n):
        for oc in range(o):
            g = oc // og
            for i in range(oh):
                for j in range(ow):
                    total = 0.0
                    for ic in range(cg):
                        for p in range(kh):
                            for q in range(kw):
                                total += xp[b, g * cg + ic, i * stride[0] + p * dilation[0],
                                            j * stride[1] + q * dilation[1]] * w[oc, ic, p, q]
                    out[b, oc, i, j] = total
    return out


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
