"""The compiled loops behind :mod:`compiled`: batch norm, ReLU, max pooling and the SGD update
in one pass each, a one-channel convolution's weight gradient, and the softmax cross-entropy and
its gradient row by row.

Importing this module imports numba; :mod:`compiled` does so the first time one of its kernels
runs. Every function is compiled for the dtypes it is called with, on first use, and cached on
disk (numba's ``cache=True``), so later processes load it instead of compiling again.

Loops over batch-norm layouts take ``(N, C, M)`` arrays (``batch_norm._Layout``): each
``(n, c)`` row of ``M`` values is read while it sits in the L1 cache, and its per-channel
results are merged into float64 accumulators. ``fastmath`` allows only reassociation and fused
multiply-adds, so sums vectorise while nan and inf keep IEEE semantics. The SGD loops use none:
they sum nothing, and without fused multiply-adds their results equal the NumPy kernel's.
"""
from __future__ import annotations

import numba
import numpy as np

__all__ = ["bn_mean_squares", "bn_affine", "bn_centred_dot_sum", "bn_affine2", "relu",
           "relu_grad", "max_pool_2x2", "max_pool_2x2_grad", "conv_grad_weight_rows",
           "softmax_cross_entropy_rows", "softmax_cross_entropy_grad_rows", "sgd_step",
           "sgd_momentum_step"]


def _jit(function, fastmath=frozenset({"reassoc", "contract"})):
    """``function`` compiled, its machine code cached on disk where numba finds a writable
    directory (beside this file, the user's cache, ``NUMBA_CACHE_DIR``); where none is, as in a
    read-only install with no home directory, compiled again in each process instead."""

    def compiled(cache: bool):
        return numba.njit(function, cache=cache, nogil=True, fastmath=set(fastmath) or False,
                          error_model="numpy")

    try:
        return compiled(cache=True)
    except RuntimeError:  # numba: "cannot cache function ...: no locator available"
        return compiled(cache=False)


def _exact(function):
    """:func:`_jit` without fast-math: every operation rounds in the arrays' dtype, in the order
    NumPy's kernel runs them, so the loop's results equal NumPy's to the bit."""
    return _jit(function, fastmath=frozenset())


@_jit
def bn_mean_squares(x):
    """Per-channel mean and sum of squared deviations of an ``(N, C, M)`` array, in one pass:
    each row's own two passes from L1, merged into the channel's running values (Chan, Golub
    and LeVeque's pairwise update)."""
    n, c, m = x.shape
    zero = np.zeros(1, x.dtype)[0]
    inverse = np.full(1, 1 / max(m, 1), x.dtype)[0]  # row sums and means stay in x's dtype
    mean = np.zeros(c)
    squares = np.zeros(c)
    for i in range(n):
        seen, total = float(i * m), float((i + 1) * m)
        for j in range(c):
            row = x[i, j]
            s = zero
            for k in range(m):
                s += row[k]
            row_mean = s * inverse
            q = zero
            for k in range(m):
                d = row[k] - row_mean
                q += d * d
            delta = row_mean - mean[j]
            mean[j] += delta * (m / total)
            squares[j] += q + delta * delta * (seen * m / total)
    return mean.astype(x.dtype), squares.astype(x.dtype)


@_jit
def bn_affine(x, scale, shift, out):
    """``out = x * scale + shift`` per channel of ``(N, C, M)`` arrays."""
    n, c, m = x.shape
    for i in range(n):
        for j in range(c):
            a, b = scale[j], shift[j]
            xs, outs = x[i, j], out[i, j]
            for k in range(m):
                outs[k] = xs[k] * a + b


@_jit
def bn_centred_dot_sum(g, x, mean):
    """Per-channel ``sum(g * (x - mean))`` and ``sum(g)`` of ``(N, C, M)`` arrays."""
    n, c, m = x.shape
    zero = np.zeros(1, x.dtype)[0]
    dot = np.zeros(c)
    total = np.zeros(c)
    for i in range(n):
        for j in range(c):
            mu = mean[j]
            gs, xs = g[i, j], x[i, j]
            d = zero
            s = zero
            for k in range(m):
                s += gs[k]
                d += gs[k] * (xs[k] - mu)
            dot[j] += d
            total[j] += s
    return dot.astype(x.dtype), total.astype(x.dtype)


@_jit
def bn_affine2(g, x, a, b, c, out):
    """``out = a * g + b * x + c`` per channel of ``(N, C, M)`` arrays."""
    n, channels, m = x.shape
    for i in range(n):
        for j in range(channels):
            aj, bj, cj = a[j], b[j], c[j]
            gs, xs, outs = g[i, j], x[i, j], out[i, j]
            for k in range(m):
                outs[k] = aj * gs[k] + bj * xs[k] + cj


@_jit
def relu(x, out):
    """``max(x, 0)`` of flat arrays, nan kept (as ``np.maximum``)."""
    for k in range(x.size):
        v = x[k]
        out[k] = v if v > 0 or v != v else 0


@_jit
def relu_grad(g, y, out):
    """``g`` where ReLU's output ``y`` is positive, else 0, of flat arrays."""
    for k in range(y.size):
        out[k] = g[k] if y[k] > 0 else 0


@_jit
def _maximum(a, b):
    """``max(a, b)`` as ``np.maximum``: a nan wins."""
    return a if a > b or a != a else b


@_jit
def max_pool_2x2(x, out):
    """2x2 max pooling with stride 2 of NCHW ``x`` into ``out``; a nan in a window wins."""
    n, c = x.shape[:2]
    oh, ow = out.shape[2], out.shape[3]
    for i in range(n):
        for j in range(c):
            for r in range(oh):
                top, bottom, row = x[i, j, 2 * r], x[i, j, 2 * r + 1], out[i, j, r]
                for q in range(ow):
                    row[q] = _maximum(_maximum(top[2 * q], top[2 * q + 1]),
                                      _maximum(bottom[2 * q], bottom[2 * q + 1]))


@_jit
def max_pool_2x2_grad(g, x, y, out):
    """The input gradient of :func:`max_pool_2x2` into ``out``: each window's ``g`` goes to its
    first element (row-major) equal to its maximum ``y``; a window whose maximum is nan routes
    none. Every element of ``out`` is written, a row or column outside the windows with 0.

    Per output row, the four window positions' values go to four contiguous rows first, then
    are interleaved into ``out``: one loop doing both did not vectorise (1.6x as long).
    """
    n, c, h, w = x.shape
    oh, ow = y.shape[2], y.shape[3]
    zero = np.zeros(1, out.dtype)[0]
    if h > 2 * oh:
        out[:, :, 2 * oh:, :] = 0
    if w > 2 * ow:
        out[:, :, :, 2 * ow:] = 0
    corners = np.empty((4, ow), out.dtype)
    top_left, top_right, bottom_left, bottom_right = corners[0], corners[1], corners[2], corners[3]
    for i in range(n):
        for j in range(c):
            for r in range(oh):
                top, bottom = x[i, j, 2 * r], x[i, j, 2 * r + 1]
                peak, share = y[i, j, r], g[i, j, r]
                for q in range(ow):
                    v, gv = peak[q], share[q]
                    a, b = top[2 * q] == v, top[2 * q + 1] == v
                    d, e = bottom[2 * q] == v, bottom[2 * q + 1] == v
                    # "e > (a | b | d)": e and none before it (booleans, branch-free)
                    top_left[q] = gv if a else zero
                    top_right[q] = gv if b > a else zero
                    bottom_left[q] = gv if d > (a | b) else zero
                    bottom_right[q] = gv if e > (a | b | d) else zero
                into_top, into_bottom = out[i, j, 2 * r], out[i, j, 2 * r + 1]
                for q in range(ow):
                    into_top[2 * q] = top_left[q]
                    into_top[2 * q + 1] = top_right[q]
                    into_bottom[2 * q] = bottom_left[q]
                    into_bottom[2 * q + 1] = bottom_right[q]


@_jit
def conv_grad_weight_rows(g_rows, x_flat, offsets, out):
    """A stride-1 convolution's weight gradient as dot products of whole flattened rows.

    ``g_rows`` is ``(N, O, L)``: the output gradient with each row padded to the padded input's
    width ``W`` (zeros past the output's), so that ``L = OH * W``; ``x_flat`` is ``(N, C, Lx)``,
    the padded input flattened (zeros past its end). The kernel tap ``(i, j)`` then reads the
    input at a fixed offset ``i * W + j`` from the output position, and its gradient is
    ``sum(g_rows[n, o] * x_flat[n, c, offset:offset + L])`` over the batch: long contiguous dots,
    four output channels at a time, accumulated into ``out`` ``(O, C, KH*KW)`` (float64).
    """
    n, o, length = g_rows.shape
    c = x_flat.shape[1]
    zero = np.zeros(1, x_flat.dtype)[0]
    for i in range(n):
        for ci in range(c):
            for k in range(offsets.size):
                start = offsets[k]
                xs = x_flat[i, ci, start:start + length]
                for oo in range(0, o - 3, 4):
                    g0, g1, g2, g3 = g_rows[i, oo], g_rows[i, oo + 1], g_rows[i, oo + 2], \
                        g_rows[i, oo + 3]
                    a0, a1, a2, a3 = zero, zero, zero, zero
                    for p in range(length):
                        v = xs[p]
                        a0 += g0[p] * v
                        a1 += g1[p] * v
                        a2 += g2[p] * v
                        a3 += g3[p] * v
                    out[oo, ci, k] += a0
                    out[oo + 1, ci, k] += a1
                    out[oo + 2, ci, k] += a2
                    out[oo + 3, ci, k] += a3
                for oo in range(o - o % 4, o):
                    gs = g_rows[i, oo]
                    a0 = zero
                    for p in range(length):
                        a0 += gs[p] * xs[p]
                    out[oo, ci, k] += a0


@_jit
def _log_sum_exp_terms(row, out, zero):
    """``exp(row - max(row))`` into ``out`` and its sum, and that max: a softmax's two passes.
    A nan in ``row`` makes the sum nan, an inf makes ``inf - inf``: nan, as NumPy's kernel."""
    peak = row[0]
    for j in range(1, row.size):
        peak = _maximum(peak, row[j])
    total = zero
    for j in range(row.size):
        e = np.exp(row[j] - peak)
        out[j] = e
        total += e
    return peak, total


@_jit
def _first_label_outside(label, classes):
    """The first row whose label is outside ``[0, classes)``, or -1."""
    for i in range(label.size):
        if label[i] < 0 or label[i] >= classes:
            return i
    return -1


@_jit
def softmax_cross_entropy_rows(x, label, out):
    """Per row of ``(N, C)`` scores ``x``: ``log(sum(exp(x - max))) - (x[label] - max)`` into
    ``out``. Returns the first row whose label is outside ``[0, C)``, and then computes
    nothing, or -1."""
    n, classes = x.shape
    bad = _first_label_outside(label, classes)
    if bad >= 0:
        return bad
    terms = np.empty(classes, x.dtype)
    zero = np.zeros(1, x.dtype)[0]
    for i in range(n):
        row = x[i]
        peak, total = _log_sum_exp_terms(row, terms, zero)
        out[i] = np.log(total) - (row[label[i]] - peak)
    return -1


@_jit
def softmax_cross_entropy_grad_rows(g, x, label, out):
    """``(softmax(x) - onehot(label)) * g`` per row of ``(N, C)`` scores into ``out``. Returns
    the first row whose label is outside ``[0, C)``, and then computes nothing, or -1."""
    n, classes = x.shape
    bad = _first_label_outside(label, classes)
    if bad >= 0:
        return bad
    zero = np.zeros(1, x.dtype)[0]
    for i in range(n):
        row = out[i]
        _, total = _log_sum_exp_terms(x[i], row, zero)
        for j in range(classes):
            row[j] /= total
        row[label[i]] -= 1
        scale = g[i]
        for j in range(classes):
            row[j] *= scale
    return -1


@_exact
def sgd_step(param, grad, lr, weight_decay):
    """SGD without momentum on flat arrays, in place: ``param -= lr * (grad + weight_decay *
    param)``, each operation rounded as the NumPy kernel's (``optim.py``)."""
    kind = param.dtype.type
    rate, decay = kind(lr), kind(weight_decay)
    for k in range(param.size):
        step = grad[k] + param[k] * decay if weight_decay else grad[k]
        param[k] -= rate * step


@_exact
def sgd_momentum_step(param, grad, velocity, lr, momentum, nesterov, weight_decay):
    """SGD with (Nesterov) momentum on flat arrays, ``param`` and ``velocity`` in place: one
    pass instead of NumPy's five whole-array operations and two temporaries, with the same
    roundings."""
    kind = param.dtype.type
    rate, mu, decay = kind(lr), kind(momentum), kind(weight_decay)
    for k in range(param.size):
        step = grad[k] + param[k] * decay if weight_decay else grad[k]
        v = velocity[k] * mu + step
        velocity[k] = v
        param[k] -= rate * (step + mu * v if nesterov else v)
