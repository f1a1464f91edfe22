"""2-D max / average pooling kernels (NCHW), written once against an array module ``xp``.

``kernels(xp)`` returns the kernel functions closed over ``xp`` (NumPy now, CuPy
later).  Only API shared by both modules is used (basic slicing,
ufuncs, ``arange``); no scatter-add.

Semantics (MegEngine / PyTorch, floor output size,
``out = (in + 2*pad - kernel) // stride + 1``):

* max pooling pads with ``-inf``; its gradient goes, for every window, to one
  element: the first maximum in row-major window order (PyTorch's choice on
  ties).  Padding never receives gradient, so a window whose real elements are
  all ``-inf`` routes to its first real element, like PyTorch.  A window whose
  maximum is ``nan`` routes no gradient (PyTorch routes it to a ``nan``).
  The routing multiplies ``g`` by a 0/1 mask (a ``where`` with a data-dependent
  mask ran 2-4x slower, branch mispredictions), so a non-finite ``g`` entry
  spreads ``nan`` over its whole window instead of only its maximum.
* average pooling divides by ``KH*KW`` when ``count_include_pad`` (MegEngine
  mode "average") and by the number of non-padding elements of the window
  otherwise (MegEngine's default "average_count_exclude_padding").

Every kernel is a short loop over the ``KH*KW`` window offsets, each step one
whole-array operation on a strided slice: for a 2x2 window that is 4
elementwise passes, cheaper than reducing over small trailing window axes.
Windows that do not overlap (``stride >= kernel``, e.g. LeNet's 2x2/2) write
their gradient slices directly instead of accumulating.  (Whole-window
operations on a ``(N, C, OH, KH, OW, KW)`` view were measured 4x slower in
NumPy, and ``reshape(...).max(axis=(3, 5))`` 30x slower: their innermost
loop has length ``KW``.)
"""

from __future__ import annotations

from typing import Callable


def _out_size(size: int, k: int, s: int, p: int) -> int:
    return (size + 2 * p - k) // s + 1


def kernels(xp) -> dict[str, Callable]:
    """Pooling kernels closed over the array module ``xp``."""
    float16 = xp.dtype(xp.float16)
    float32 = xp.dtype(xp.float32)

    def geometry(shape, kernel_size, stride, padding):
        n, c, h, w = shape
        kh, kw = kernel_size
        sh, sw = stride
        ph, pw = padding
        return (n, c, h, w, kh, kw, sh, sw, ph, pw,
                _out_size(h, kh, sh, ph), _out_size(w, kw, sw, pw))

    def padded(x, ph, pw, value):
        if ph == 0 and pw == 0:
            return x
        n, c, h, w = x.shape
        out = xp.full((n, c, h + 2 * ph, w + 2 * pw), value, dtype=x.dtype)
        out[:, :, ph:ph + h, pw:pw + w] = x
        return out

    def offsets(kh, kw, sh, sw, oh, ow):
        """Row-major window offsets with the slices selecting them."""
        hspan = sh * (oh - 1) + 1
        wspan = sw * (ow - 1) + 1
        for i in range(kh):
            for j in range(kw):
                yield (slice(None), slice(None), slice(i, i + hspan, sh), slice(j, j + wspan, sw))

    # ------------------------------------------------------------------ max
    def max_pool2d(x, *, kernel_size, stride, padding, out=None):
        # ``out``: a slice of a whole batch's result, when the batch is split over threads
        n, c, h, w, kh, kw, sh, sw, ph, pw, oh, ow = geometry(x.shape, kernel_size, stride, padding)
        xpad = padded(x, ph, pw, -xp.inf)
        sl = list(offsets(kh, kw, sh, sw, oh, ow))
        if len(sl) == 1:
            if out is None:
                return xpad[sl[0]].copy()
            out[...] = xpad[sl[0]]
            return out
        y = xp.maximum(xpad[sl[0]], xpad[sl[1]], out=out)
        for s in sl[2:]:
            xp.maximum(y, xpad[s], out=y)
        return y

    def max_pool2d_grad(g, x, y, *, kernel_size, stride, padding, out=None):
        n, c, h, w, kh, kw, sh, sw, ph, pw, oh, ow = geometry(x.shape, kernel_size, stride, padding)
        dt = x.dtype
        # nan padding never compares equal to a maximum, so padding never wins
        xpad = padded(x, ph, pw, xp.nan)
        hp, wp = h + 2 * ph, w + 2 * pw
        g = g.astype(dt, copy=False)
        disjoint = sh >= kh and sw >= kw
        tiled = disjoint and sh == kh and sw == kw and hp == oh * kh and wp == ow * kw
        if out is not None and not (ph or pw):
            gx = out  # written in place: a slice of a whole batch's gradient
            if not tiled:
                gx[...] = 0
        else:
            gx = (xp.empty if tiled else xp.zeros)((n, c, hp, wp), dtype=dt)
        sl = list(offsets(kh, kw, sh, sw, oh, ow))
        free = None  # windows whose maximum has not been claimed yet
        for k, s in enumerate(sl):
            hit = xpad[s] == y
            if free is not None:
                hit &= free  # keep only the first maximum in row-major order
            if k < len(sl) - 1:
                if free is None:
                    free = ~hit
                else:
                    free ^= hit  # hit is a subset of free
            if disjoint:  # every slice written once, straight into gx
                xp.multiply(g, hit, out=gx[s])
            else:
                gx[s] += g * hit
        if ph or pw:
            if out is not None:
                out[...] = gx[:, :, ph:ph + h, pw:pw + w]
                return out
            gx = xp.ascontiguousarray(gx[:, :, ph:ph + h, pw:pw + w])
        return gx

    # ------------------------------------------------------------------ avg
    def acc_dtype(dt):
        return float32 if dt == float16 else dt

    def divisor(h, w, kh, kw, sh, sw, ph, pw, oh, ow, count_include_pad, ct):
        """Scalar ``kh*kw`` or the ``(OH, OW)`` array of non-padding counts."""
        if count_include_pad or (ph == 0 and pw == 0):
            return kh * kw
        r0 = xp.arange(oh) * sh - ph
        c0 = xp.arange(ow) * sw - pw
        rows = xp.minimum(r0 + kh, h) - xp.maximum(r0, 0)
        cols = xp.minimum(c0 + kw, w) - xp.maximum(c0, 0)
        return (rows[:, None] * cols[None, :]).astype(ct)

    def avg_pool2d(x, *, kernel_size, stride, padding, count_include_pad):
        n, c, h, w, kh, kw, sh, sw, ph, pw, oh, ow = geometry(x.shape, kernel_size, stride, padding)
        dt = x.dtype
        ct = acc_dtype(dt)
        xpad = padded(x, ph, pw, 0)
        sl = list(offsets(kh, kw, sh, sw, oh, ow))
        acc = xpad[sl[0]].astype(ct)  # a fresh copy
        for s in sl[1:]:
            acc += xpad[s]
        acc /= divisor(h, w, kh, kw, sh, sw, ph, pw, oh, ow, count_include_pad, ct)
        return acc.astype(dt, copy=False)

    def avg_pool2d_grad(g, *, input_shape, kernel_size, stride, padding, count_include_pad):
        n, c, h, w, kh, kw, sh, sw, ph, pw, oh, ow = geometry(
            input_shape, kernel_size, stride, padding)
        dt = g.dtype
        ct = acc_dtype(dt)
        gs = g.astype(ct) / divisor(h, w, kh, kw, sh, sw, ph, pw, oh, ow, count_include_pad, ct)
        hp, wp = h + 2 * ph, w + 2 * pw
        if sh >= kh and sw >= kw:
            # disjoint windows: every slice is assigned once
            tiled = sh == kh and sw == kw and hp == oh * kh and wp == ow * kw
            gx = (xp.empty if tiled else xp.zeros)((n, c, hp, wp), dtype=dt)
            for s in offsets(kh, kw, sh, sw, oh, ow):
                gx[s] = gs
        else:
            gx = xp.zeros((n, c, hp, wp), dtype=ct)
            for s in offsets(kh, kw, sh, sw, oh, ow):
                gx[s] += gs
        if ph or pw:
            gx = gx[:, :, ph:ph + h, pw:pw + w]
        return xp.ascontiguousarray(gx, dtype=dt)

    return {
        "max_pool2d": max_pool2d,
        "max_pool2d_grad": max_pool2d_grad,
        "avg_pool2d": avg_pool2d,
        "avg_pool2d_grad": avg_pool2d_grad,
    }
