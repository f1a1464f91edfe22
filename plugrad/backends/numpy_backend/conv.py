"""2-D convolution kernels (NCHW), written once against an array module ``xp``.

``kernels(xp)`` returns the kernel functions closed over ``xp`` (NumPy now, CuPy
later).  Only API shared by both modules is used: ``as_strided`` views,
``ascontiguousarray``, ``matmul``, basic slicing and in-place ``+=``; no
``sliding_window_view`` and no scatter-add.

Strategy (the three kernels share one im2col layout, but for the channels-last columns below):

* im2col is one ``as_strided`` view copied into contiguous
  ``(blocks, G, Cg*KH*KW, nb*L)`` arrays, a pass of blocks at a time (below): the
  batch is split into ``NB`` blocks of ``nb`` samples, ``G`` is the number of
  groups and ``L`` the number of columns per sample.  The GEMMs are batched
  ``matmul`` calls over ``(blocks, G)``, one per pass.  On the GPU ``nb == N`` (one GEMM per
  group); on the CPU ``nb``
  is chosen so one block's columns stay cache-sized, which measured faster
  with OpenBLAS on small layers than one huge, skinny GEMM.
* Stride-1 convolutions use "wide" columns: for a fixed kernel offset the
  needed input is one contiguous run of the flattened padded image, so each
  im2col row copies ``L = (OH-1)*Wp + OW`` contiguous elements (the
  ``Wp - OW`` junk columns per output row are computed and dropped).  This
  replaces many short strided copies by few long ones.
* Channels-last columns (CPU, one group, no horizontal dilation): the input is copied once as
  ``(N, Hp, Wp, C)``, where a window row is ``kw * C`` contiguous values, and the columns are
  ``(nb*OH*OW, kh*kw*C)`` rows; the forward is ``columns @ W^T`` and the weight gradient
  ``columns^T @ g``, per block. They replace wide rows where those waste a quarter of their
  columns or more, or cannot be used (stride > 1), and ``kw * C >= 16``
  (``_channels_last_pays``). Interleaved in one process, one thread, batch 64: LeNet's conv2
  (6 channels, 12x12, 5x5) forward 0.78-0.89x the wide-row time and weight gradient
  0.87-0.98x; SmallVGG's strided layer (32 -> 64, 16x16, stride 2) 0.86-0.87x and 0.89-0.90x.
  They lost on short window rows (LeNet's conv1, C = 1: 2.6x the time; SmallVGG's first layer,
  C = 3: 1.9x) and were mixed where wide rows waste little (SmallVGG's 16x16 layers: forward
  0.9x, weight gradient 1.07x; its 32x32 16-channel layer: 1.24x and 0.96x).
* ``conv2d_grad_weight`` is one batched GEMM of the im2col matrix with the
  (zero-padded, for wide columns) output gradient, summed over batch blocks.
* ``conv2d_grad_input`` is one batched GEMM ``W^T @ g`` followed by col2im as a
  loop over the ``KH*KW`` kernel offsets, each adding one shifted slice; for
  stride 1 the slices are flat shifts of whole padded planes.
* 1x1 / stride-1 / no-padding convolutions skip im2col and col2im entirely.
* ``conv2d_bias`` (``conv2d`` with its optional bias) adds the bias in the copy that lays
  the GEMM's result out as NCHW.

Every kernel copies its columns a pass of a few blocks at a time (``CPU_BLOCK_BYTES["pass"]``)
and multiplies them while they are in cache, instead of copying every block's columns before
the first GEMM; the GEMMs are the same, so results do not change.

Alternatives measured on LeNet's layers (batch 64, see
``benchmarks/bench_conv_kernels.py --explore``) and rejected: one unblocked
GEMM per group (1.5-2x slower on the CPU: OpenBLAS handles a 6x25 @ 25x57k
GEMM poorly), columns in ``(N*P, C*K*K)`` order (short inner copies, 2-4x
slower), im2col by a loop over kernel offsets, ``einsum`` on the window view
or on the columns, ``tensordot``; for the weight gradient ``g @ cols^T``
(1.5x slower than ``cols @ g^T``); for the input gradient batch blocking
(faster for C=1, slower for C=6) and per-sample (non-flat) col2im slices.  On SmallVGG's
3x3 layers (thread CPU time, one BLAS thread): the stride-1 input gradient as a forward
convolution of ``g`` with the flipped, transposed weight (im2col of ``g`` instead of col2im)
took 0.8-1.15x the time on 16-32 channels and 4-11x on LeNet's (few input channels); OpenBLAS
with its AVX-512 kernels (``OPENBLAS_CORETYPE=SkylakeX``) ran these GEMMs 0.8-1.05x as long
as with the Haswell ones it picks on this AMD EPYC.

Winograd F(2x2, 3x3) for the stride-1 3x3 forward and input gradient was measured too and
rejected (``benchmarks/bench_winograd.py``: 16 batched GEMMs ``(O x C) @ (C x tiles)``, the
transforms as long contiguous NumPy passes over parity planes of the padded input). On
SmallVGG's layers with 16-32 channels at batch 64 it took 0.84-1.07x of im2col's time for the
forward and 0.76-1.09x for the input gradient on one thread (3 -> 16 channels: 2x), but
0.9-1.3x split over 2 threads, where its extra passes over memory contend; the SmallVGG step
took 0.95-0.99x with ``PLUGRAD_NUM_THREADS=1`` and 1.00-1.09x on the default 2 threads. Its
float32 error was below im2col's (2-3e-7 against 4-8e-7 of the largest output). Wider layers
gain more on one thread (forward 0.65-0.77x at 64-128 channels, 8x8 and 16x16).

Caveat of the wide layout: junk columns read real (finite or not) input
values and are multiplied by exact zeros in ``conv2d_grad_weight``, so an
``inf``/``nan`` *input* may turn additional weight-gradient entries into
``nan``.  Finite inputs give exact results.
"""

from __future__ import annotations

import functools
import math
from typing import Callable

# CPU cache blocking: bytes of im2col columns per batch block (None: no
# blocking).  Tuned on LeNet-sized layers with benchmarks/bench_conv_kernels.py
# (256 KB vs 64 KB / 1 MB / unblocked; stable with 1- and 2-thread OpenBLAS); the input
# gradient's 4 MB on SmallVGG's 3x3 layers (benchmarks/vgg_step.py): 0.5-0.8x the unblocked
# time there, LeNet's conv2 unchanged (1 and 2 MB: 1.1-1.2x slower on it).
# "pass": the columns copied per pass.  The blocks' columns are copied and multiplied a pass
# of at most this many bytes at a time (at least one block), so they are still in cache when
# the GEMM reads them, and the workspace stays bounded: on SmallVGG's 3x3 layers the forward
# and the weight gradient took 0.5-0.9x the time of one copy of every block's columns, on
# LeNet's 0.75-0.95x (512 KB, 1 MB, 2 MB and 4 MB measured; 512 KB to 2 MB alike).
CPU_BLOCK_BYTES = {"fwd": 256 * 1024, "grad_weight": 256 * 1024, "grad_input": 4 * 1024 * 1024,
                   "pass": 1024 * 1024}

# Channels-last columns (below) are copied when a wide row would be at least this junk (LeNet's
# conv2: 4 of 12 columns), or the convolution is strided (no wide rows), and a window row of the
# channels-last input, kw * C values, is at least CHANNELS_LAST_MIN_RUN long.
CHANNELS_LAST_MIN_JUNK = 0.25
CHANNELS_LAST_MIN_RUN = 16

# The forward's im2col workspace stays under max(WORKSPACE_FLOOR, input + output bytes): a
# block of samples is cut down to fit, and a single sample whose columns do not fit is run in
# bands of output rows (a 31x31 kernel on a 16 MB image would otherwise want 15 GB).
WORKSPACE_FLOOR = 64 * 1024 * 1024


def _channels_last_pays(c: int, kw: int, stride: tuple, wp: int, ow: int) -> bool:
    """Whether channels-last columns beat wide channels-first ones (both measured on LeNet's
    and SmallVGG's layers, ``benchmarks/bench_conv_kernels.py --explore``)."""
    if kw * c < CHANNELS_LAST_MIN_RUN:
        return False
    return tuple(stride) != (1, 1) or (wp - ow) / wp >= CHANNELS_LAST_MIN_JUNK


def _out_size(size: int, k: int, s: int, p: int, d: int) -> int:
    return (size + 2 * p - d * (k - 1) - 1) // s + 1


@functools.lru_cache(maxsize=256)
def _pick_block(n: int, per_sample: int, budget: int | None) -> int:
    """Largest divisor of ``n`` whose block fits ``budget`` bytes (at least 1)."""
    if n == 0:
        return 1  # an empty batch is one empty block
    if budget is None or n * per_sample <= budget:
        return n
    for d in range(min(n, budget // max(per_sample, 1)), 1, -1):
        if n % d == 0:
            return d
    return 1


def _blocks_per_pass(nblk: int, block_bytes: int, budget: int | None) -> int:
    """How many blocks' columns one pass copies: all of them unless that exceeds ``budget``."""
    if budget is None or nblk * block_bytes <= budget:
        return max(nblk, 1)
    return max(1, budget // max(block_bytes, 1))


def kernels(xp, gemm: Callable | None = None,
            block_bytes: dict[str, int] | None = None) -> dict[str, Callable]:
    """Convolution kernels closed over the array module ``xp``; ``gemm`` (``xp.matmul`` by
    default) multiplies the weight gradient's columns, and ``block_bytes`` replaces entries of
    :data:`CPU_BLOCK_BYTES` (on the CPU)."""
    on_cpu = getattr(xp, "__name__", "") == "numpy"
    budgets = {**CPU_BLOCK_BYTES, **(block_bytes or {})} if on_cpu else {}
    return _make_kernels(xp, budgets, half_in_float32=on_cpu,
                         layout="auto" if on_cpu else "channels_first", gemm=gemm)


def _make_kernels(xp, block_bytes: dict, *, half_in_float32: bool,
                  gw_cols_first: bool = True, layout: str = "auto",
                  gemm: Callable | None = None) -> dict[str, Callable]:
    """``layout``: the im2col layout of the forward and weight gradient, "channels_first",
    "channels_last" (where it applies: one group, no horizontal dilation) or "auto", by the
    geometry (:func:`_channels_last_pays`). ``gemm``: ``matmul``'s stand-in for the weight
    gradient's products, called with contiguous columns and a transposed view of the (smaller)
    output gradient or the columns' transposed view, and ``out=``."""
    as_strided = xp.lib.stride_tricks.as_strided
    float16 = xp.dtype(xp.float16)
    float32 = xp.dtype(xp.float32)
    fwd_budget = block_bytes.get("fwd")
    gw_budget = block_bytes.get("grad_weight")
    gi_budget = block_bytes.get("grad_input")
    pass_budget = block_bytes.get("pass")
    gw_matmul = gemm or xp.matmul

    def blocks_per_pass(nblk, block_bytes):
        return _blocks_per_pass(nblk, block_bytes, pass_budget)

    def channels_last(c, kw, groups, stride, dw, wp, ow):
        if groups != 1 or dw != 1 or layout == "channels_first":
            return False
        return layout == "channels_last" or _channels_last_pays(c, kw, stride, wp, ow)

    def rows_view(x, kh, kw, oh, ow, sh, sw, ph, pw, dh, nb, ct):
        """im2col as rows over a channels-last padded copy of ``x``: the strided view
        ``(NB, nb, oh, ow, kh, kw*C)`` whose last axis is one contiguous window row."""
        n, c, h, w = x.shape
        xh = xp.zeros((n, h + 2 * ph, w + 2 * pw, c), dtype=ct)
        xh[:, ph:ph + h, pw:pw + w] = x.transpose(0, 2, 3, 1)
        s0, s1, s2 = xh.strides[:3]
        return as_strided(xh, (n // nb, nb, oh, ow, kh, kw * c),
                          (nb * s0, s0, sh * s1, sw * s2, dh * s1, xh.itemsize))

    def rows(view, first, stop):
        """Blocks ``first:stop`` of a :func:`rows_view`, copied: ``(blocks, nb*oh*ow, K)``,
        K in (kh, kw, C) order."""
        cols = xp.ascontiguousarray(view[first:stop])
        return cols.reshape(stop - first, math.prod(view.shape[1:4]), math.prod(view.shape[4:]))

    def compute_dtype(dt):
        # NumPy has no BLAS for float16: run the GEMMs in float32, cast back.
        return float32 if (half_in_float32 and dt == float16) else dt

    def pad_input(x, ph, pw, ct):
        n, c, h, w = x.shape
        if ph == 0 and pw == 0:
            return xp.ascontiguousarray(x, dtype=ct)
        out = xp.zeros((n, c, h + 2 * ph, w + 2 * pw), dtype=ct)
        out[:, :, ph:ph + h, pw:pw + w] = x
        return out

    def columns(view, first, stop):
        """Blocks ``first:stop`` of an im2col view, copied: ``(blocks, G, Cg*kh*kw, nb*L)``."""
        cols = xp.ascontiguousarray(view[first:stop])
        return cols.reshape(stop - first, view.shape[1], math.prod(view.shape[2:5]),
                            math.prod(view.shape[5:]))

    def im2col_view(xpad, groups, kh, kw, oh, ow, sh, sw, dh, dw, nb, wide):
        """The strided view ``(NB, G, Cg, kh, kw, nb, L...)`` im2col copies, and ``L``."""
        n, c, hp, wp = xpad.shape
        cg = c // groups
        sn, sc, s_h, s_w = xpad.strides
        shape: tuple[int, ...]
        strides: tuple[int, ...]
        if wide:
            L = (oh - 1) * wp + ow
            shape = (n // nb, groups, cg, kh, kw, nb, L)
            strides = (nb * sn, cg * sc, sc, dh * s_h, dw * s_w, sn, s_w)
        else:
            L = oh * ow
            shape = (n // nb, groups, cg, kh, kw, nb, oh, ow)
            strides = (nb * sn, cg * sc, sc, dh * s_h, dw * s_w, sn, sh * s_h, sw * s_w)
        return as_strided(xpad, shape, strides), L

    def _result(y, dt, out, shape, bias=None):
        """``y`` (+ ``bias``) as a fresh contiguous array of ``shape``, or written into ``out``
        (a kernel computing part of a batch writes its slice of the whole result). The bias is
        added by the copy that lays the result out, not by a pass of its own."""
        if bias is None:
            if out is None:
                return xp.ascontiguousarray(y, dtype=dt).reshape(shape)
            out.reshape(y.shape)[...] = y
            return out
        if out is None:
            out = xp.empty(shape, dtype=dt)
        xp.add(y, bias, out=out.reshape(y.shape))
        return out

    def in_passes(produce, nblk, nb, block_bytes, dt, out, shape, bias=None):
        """The ``shape`` result whose samples of blocks ``first:stop`` are
        ``produce(first, stop)``, laid out ``(blocks, nb, ...)``: one call for every block
        when their columns fit a pass, else a pass at a time, each written into its slice."""
        step = blocks_per_pass(nblk, block_bytes)
        if step >= nblk:
            return _result(produce(0, nblk), dt, out, shape, bias)
        if out is None:
            out = xp.empty(shape, dtype=dt)
        for first in range(0, nblk, step):
            stop = min(nblk, first + step)
            part = out[first * nb:stop * nb]
            _result(produce(first, stop), dt, part, part.shape, bias)
        return out

    def wide_view(a, oh, ow, wp):
        """View ``(..., L)`` wide rows of a contiguous array as ``(..., oh, ow)``."""
        it = a.itemsize
        return as_strided(a, a.shape[:-1] + (oh, ow), a.strides[:-1] + (wp * it, it))

    def workspace_cap(x, out_elements):
        return max(WORKSPACE_FLOOR, x.nbytes + out_elements * x.itemsize)

    def conv2d(x, w, b=None, *, stride, padding, dilation, groups, out=None):
        n, c, h, wd = x.shape
        o, _, kh, kw = w.shape
        oh = _out_size(h, kh, stride[0], padding[0], dilation[0])
        ow = _out_size(wd, kw, stride[1], padding[1], dilation[1])
        cap = workspace_cap(x, n * o * oh * ow)
        wide_row = wd + 2 * padding[1] if stride[0] == stride[1] == 1 else ow
        row_bytes = c * kh * kw * wide_row * compute_dtype(x.dtype).itemsize
        if oh < 2 or oh * row_bytes <= cap:
            return conv2d_block(x, w, b, stride=stride, padding=padding, dilation=dilation,
                                groups=groups, out=out, cap=cap)
        return conv2d_bands(x, w, b, stride=stride, padding=padding, dilation=dilation,
                            groups=groups, out=out, rows=max(1, cap // row_bytes), oh=oh, ow=ow)

    def conv2d_bands(x, w, b, *, stride, padding, dilation, groups, out, rows, oh, ow):
        """conv2d over bands of ``rows`` output rows, each from its own slab of the padded
        input, so the columns of one band fit the workspace."""
        n, o = x.shape[0], w.shape[0]
        kh = w.shape[2]
        sh, dh = stride[0], dilation[0]
        xpad = pad_input(x, padding[0], padding[1], x.dtype)
        if out is None:
            out = xp.empty((n, o, oh, ow), dtype=x.dtype)
        for r0 in range(0, oh, rows):
            r1 = min(oh, r0 + rows)
            slab = xpad[:, :, r0 * sh:(r1 - 1) * sh + dh * (kh - 1) + 1]
            out[:, :, r0:r1] = conv2d_block(slab, w, b, stride=stride, padding=(0, 0),
                                            dilation=dilation, groups=groups)
        return out

    def conv2d_block(x, w, b=None, *, stride, padding, dilation, groups, out=None, cap=None):
        n, c, h, wd = x.shape
        o, cg, kh, kw = w.shape
        sh, sw = stride
        ph, pw = padding
        dh, dw = dilation
        og = o // groups
        oh = _out_size(h, kh, sh, ph, dh)
        ow = _out_size(wd, kw, sw, pw, dw)
        dt = x.dtype
        ct = compute_dtype(dt)
        if channels_last(c, kw, groups, stride, dw, wd + 2 * pw, ow):
            return conv2d_rows(x, w, b, stride=stride, padding=padding, dilation=dilation,
                               out=out, cap=cap, oh=oh, ow=ow)
        xpad = pad_input(x, ph, pw, ct)
        wp = xpad.shape[3]
        wide = sh == 1 and sw == 1
        L = (oh - 1) * wp + ow if wide else oh * ow
        if kh == kw == 1 and wide and ph == pw == 0:
            nb = 1  # the columns are x itself: no copy at all
        else:
            if cap is None:
                cap = workspace_cap(x, n * o * oh * ow)
            budget = cap if fwd_budget is None else min(fwd_budget, cap)
            nb = _pick_block(n, c * kh * kw * L * ct.itemsize, budget)
        nblk = n // nb
        view, L = im2col_view(xpad, groups, kh, kw, oh, ow, sh, sw, dh, dw, nb, wide)
        wm = xp.ascontiguousarray(w, dtype=ct).reshape(groups, og, cg * kh * kw)
        bias = None if b is None else b.reshape(1, 1, groups, og, 1, 1)

        def products(first, stop):
            """The result's samples of blocks ``first:stop``, laid out (blocks, nb, G, Og, ..)."""
            y = xp.matmul(wm, columns(view, first, stop))
            y = y.reshape(stop - first, groups, og, nb, L)  # (blocks, G, Og, nb, L)
            if wide and ow != wp:
                y = wide_view(y, oh, ow, wp)
            else:
                y = y.reshape(stop - first, groups, og, nb, oh, ow)
            return y.transpose(0, 3, 1, 2, 4, 5)

        return in_passes(products, nblk, nb, nb * c * kh * kw * L * ct.itemsize, dt, out,
                         (n, o, oh, ow), bias)

    def conv2d_rows(x, w, b, *, stride: tuple[int, int], padding: tuple[int, int], dilation,
                    out, cap, oh, ow):
        """conv2d (one group) on channels-last columns: each block one GEMM
        ``(nb*oh*ow, K) @ (K, O)``, laid out as NCHW by the copy that adds the bias."""
        n, c = x.shape[:2]
        o, _, kh, kw = w.shape
        ct = compute_dtype(x.dtype)
        per_sample = oh * ow * c * kh * kw * ct.itemsize
        if cap is None:
            cap = workspace_cap(x, n * o * oh * ow)
        nb = _pick_block(n, per_sample, cap if fwd_budget is None else min(fwd_budget, cap))
        view = rows_view(x, kh, kw, oh, ow, *stride, *padding, dilation[0], nb, ct)
        # (K, O) with K in the columns' (kh, kw, C) order: a transposed view, as BLAS takes it
        wk = xp.ascontiguousarray(w.transpose(0, 2, 3, 1), dtype=ct).reshape(o, -1).T
        bias = None if b is None else b.reshape(1, 1, 1, o, 1, 1)

        def products(first, stop):
            y = xp.matmul(rows(view, first, stop), wk)  # (blocks, nb*oh*ow, O)
            return y.reshape(stop - first, nb, oh, ow, 1, o).transpose(0, 1, 4, 5, 2, 3)

        return in_passes(products, n // nb, nb, nb * per_sample, x.dtype, out, (n, o, oh, ow),
                         bias)

    def grad_weight_rows(g, x, *, weight_shape, stride: tuple[int, int],
                         padding: tuple[int, int], dilation, share):
        """grad_weight_blocks on channels-last columns, in the same per-block layout."""
        n, c = x.shape[:2]
        o, _, kh, kw = weight_shape
        oh, ow = g.shape[2], g.shape[3]
        ct = compute_dtype(x.dtype)
        per_sample = oh * ow * c * kh * kw * ct.itemsize
        nb = _pick_block(n, per_sample, gw_budget)
        first, stop = (n // nb * i // share[1] for i in (share[0], share[0] + 1))
        nblk = stop - first
        g, x = g[first * nb:stop * nb], x[first * nb:stop * nb]
        view = rows_view(x, kh, kw, oh, ow, *stride, *padding, dilation[0], nb, ct)
        gm = xp.ascontiguousarray(g.transpose(0, 2, 3, 1), dtype=ct)
        gm = gm.reshape(nblk, nb * oh * ow, o)
        blocks = xp.empty((nblk, kh * kw * c, o), dtype=ct)
        step = blocks_per_pass(nblk, nb * per_sample)
        for begin in range(0, nblk, step):
            end = min(nblk, begin + step)
            gw_matmul(rows(view, begin, end).swapaxes(-1, -2), gm[begin:end],
                      out=blocks[begin:end])
        # K from (kh, kw, C) to the (C, kh, kw) order grad_weight_total reads
        blocks = blocks.reshape(nblk, kh, kw, c, o).transpose(0, 3, 1, 2, 4)
        blocks = blocks.reshape(nblk, 1, c * kh * kw, o)
        return blocks if gw_cols_first else blocks.swapaxes(-1, -2)

    def grad_weight_blocks(g, x, *, weight_shape, stride, padding, dilation, groups,
                           share=(0, 1)):
        """conv2d_grad_weight's per-block products, not yet summed: ``(NB, G, ., .)`` in the
        compute dtype. ``share=(i, k)`` computes only the i-th of k runs of blocks, so threads
        can split the batch and the sum still sees exactly the blocks of one call."""
        n, c, h, wd = x.shape
        o, cg, kh, kw = weight_shape
        sh, sw = stride
        ph, pw = padding
        dh, dw = dilation
        og = o // groups
        oh, ow = g.shape[2], g.shape[3]
        ct = compute_dtype(x.dtype)
        wp = wd + 2 * pw
        if channels_last(c, kw, groups, stride, dw, wp, ow):
            return grad_weight_rows(g, x, weight_shape=weight_shape, stride=stride,
                                    padding=padding, dilation=dilation, share=share)
        wide = sh == 1 and sw == 1
        L = (oh - 1) * wp + ow if wide else oh * ow
        if kh == kw == 1 and wide and ph == pw == 0:
            nb = 1
        else:
            nb = _pick_block(n, c * kh * kw * L * ct.itemsize, gw_budget)
        first, stop = (n // nb * i // share[1] for i in (share[0], share[0] + 1))
        nblk = stop - first
        g, x = g[first * nb:stop * nb], x[first * nb:stop * nb]
        xpad = pad_input(x, ph, pw, ct)
        view, L = im2col_view(xpad, groups, kh, kw, oh, ow, sh, sw, dh, dw, nb, wide)
        # output gradient laid out like the columns: (NB, G, Og, nb*L)
        gv = g.reshape(nblk, nb, groups, og, oh, ow).transpose(0, 2, 3, 1, 4, 5)
        if wide and ow != wp:
            gm = xp.zeros((nblk, groups, og, nb, L), dtype=ct)
            wide_view(gm, oh, ow, wp)[...] = gv
        else:
            gm = xp.ascontiguousarray(gv, dtype=ct)
        gm = gm.reshape(nblk, groups, og, nb * L)

        def products(begin, end, out=None):
            cols, gs = columns(view, begin, end), gm[begin:end]
            if gw_cols_first:
                return gw_matmul(cols, gs.swapaxes(-1, -2), out=out)  # (NB, G, Cg*kh*kw, Og)
            return gw_matmul(gs, cols.swapaxes(-1, -2), out=out)  # (NB, G, Og, Cg*kh*kw)

        step = blocks_per_pass(nblk, nb * c * kh * kw * L * ct.itemsize)
        if step >= nblk:
            return products(0, nblk)
        # The same per-block GEMMs, their columns copied a few blocks at a time.
        k = cg * kh * kw
        blocks = xp.empty((nblk, groups) + ((k, og) if gw_cols_first else (og, k)), dtype=ct)
        for begin in range(0, nblk, step):
            end = min(nblk, begin + step)
            products(begin, end, out=blocks[begin:end])
        return blocks

    def grad_weight_total(blocks, dtype, weight_shape):
        """The blocks' products summed in block order, as the ``weight_shape`` gradient."""
        gw = blocks[0] if blocks.shape[0] == 1 else blocks.sum(axis=0)
        if gw_cols_first:
            gw = gw.swapaxes(-1, -2)
        return xp.ascontiguousarray(gw, dtype=dtype).reshape(tuple(weight_shape))

    def conv2d_grad_weight(g, x, *, weight_shape, stride, padding, dilation, groups):
        blocks = grad_weight_blocks(g, x, weight_shape=weight_shape, stride=stride,
                                    padding=padding, dilation=dilation, groups=groups)
        return grad_weight_total(blocks, x.dtype, weight_shape)

    # Its two stages, for a caller that splits the batch over threads (parallel.py).
    # (mypy cannot type attributes set on a function)
    conv2d_grad_weight.blocks = grad_weight_blocks  # type: ignore[attr-defined]
    conv2d_grad_weight.total = grad_weight_total  # type: ignore[attr-defined]

    def conv2d_grad_input(g, w, *, input_shape, stride, padding, dilation, groups, out=None):
        n, c, h, wd = input_shape
        o, cg, kh, kw = w.shape
        sh, sw = stride
        ph, pw = padding
        dh, dw = dilation
        og = o // groups
        oh, ow = g.shape[2], g.shape[3]
        hp, wp = h + 2 * ph, wd + 2 * pw
        dt = g.dtype
        ct = compute_dtype(dt)
        # W^T per group as a transposed view; matmul hands it to BLAS as is.
        wt = xp.ascontiguousarray(w, dtype=ct).reshape(groups, og, cg * kh * kw).swapaxes(1, 2)

        if kh == kw == 1 and ph == pw == 0 and sh == sw == 1:
            gx = xp.matmul(wt, xp.ascontiguousarray(g, dtype=ct).reshape(n, groups, og, h * wd))
            return _result(gx, dt, out, (n, c, h, wd))

        if sh == 1 and sw == 1:
            # Whole padded planes, flattened: every kernel offset is one flat shift.
            plane = hp * wp
            nb = _pick_block(n, c * kh * kw * plane * ct.itemsize, gi_budget)
            nblk = n // nb
            gz = xp.zeros((nblk, groups, og, nb, hp, wp), dtype=ct)
            gz[..., :oh, :ow] = g.reshape(nblk, nb, groups, og, oh, ow).transpose(0, 2, 3, 1, 4, 5)
            m = nb * plane

            def planes(first, stop):
                """Padded input gradients of blocks ``first:stop``: (blocks, C, nb, hp, wp)."""
                k = stop - first
                gcols = xp.matmul(wt, gz[first:stop].reshape(k, groups, og, m))
                gcols = gcols.reshape(k, c, kh, kw, m)
                acc = gcols[:, :, 0, 0].copy()  # offset (0, 0): no shift
                for i in range(kh):
                    for j in range(kw):
                        off = i * dh * wp + j * dw
                        if off:
                            acc[:, :, off:] += gcols[:, :, i, j, :m - off]
                return acc.reshape(k, c, nb, hp, wp)

            per_block = nb * c * kh * kw * plane * ct.itemsize
        else:
            L = oh * ow
            nb = _pick_block(n, c * kh * kw * L * ct.itemsize, gi_budget)
            nblk = n // nb
            gv = g.reshape(nblk, nb, groups, og, oh, ow).transpose(0, 2, 3, 1, 4, 5)
            gm = xp.ascontiguousarray(gv, dtype=ct).reshape(nblk, groups, og, nb * L)
            hspan = sh * (oh - 1) + 1
            wspan = sw * (ow - 1) + 1

            def planes(first, stop):
                k = stop - first
                gcols = xp.matmul(wt, gm[first:stop]).reshape(k, c, kh, kw, nb, oh, ow)
                acc = xp.zeros((k, c, nb, hp, wp), dtype=ct)
                for i in range(kh):
                    for j in range(kw):
                        r0, c0 = i * dh, j * dw
                        acc[:, :, :, r0:r0 + hspan:sh, c0:c0 + wspan:sw] += gcols[:, :, i, j]
                return acc

            per_block = nb * c * kh * kw * L * ct.itemsize

        def cropped(acc):
            return acc[:, :, :, ph:ph + h, pw:pw + wd].transpose(0, 2, 1, 3, 4)

        return in_passes(lambda first, stop: cropped(planes(first, stop)), nblk, nb, per_block,
                         dt, out, (n, c, h, wd))

    return {
        "conv2d": conv2d,
        "conv2d_bias": conv2d,  # the same kernel, with its optional bias given
        "conv2d_grad_input": conv2d_grad_input,
        "conv2d_grad_weight": conv2d_grad_weight,
    }
