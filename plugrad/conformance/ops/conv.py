"""Records and kernel contracts of convolution and pooling, with their gradient ops.

Every op here is a composite with a decomposition into primitives, so a backend may fuse any of
them. The references are direct float64 loops over kernel offsets (no im2col, nothing shared
with plugrad's decompositions or kernels); the same functions are the kernel contracts.
"""
from __future__ import annotations

import numpy as np

from plugrad import functional as F
from plugrad.conformance import samples as S
from plugrad.conformance.contract import kernel
from plugrad.conformance.table import Arg, OpRecord, Sample, register
from plugrad.core.dispatch import apply

__all__ = ["applied", "small"]

_FLOATS = ("float16", "float32", "float64")
_F16 = {"float16": (2e-2, 5e-2)}


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


# -- convolution ------------------------------------------------------------------------------
_CONV = "stride, padding, dilation are (h, w) pairs, groups an int"


@kernel(f"x (N, C, H, W), w (O, C // groups, kh, kw); {_CONV}; (N, O, OH, OW) in x's dtype")
def conv2d(x, w, *, stride, padding, dilation, groups):
    return _convolve(x, w, None, stride, padding, dilation, groups)


@kernel(f"x and w as conv2d's, b (1, O, 1, 1); {_CONV}; conv2d(x, w) + b in x's dtype")
def conv2d_bias(x, w, b, *, stride, padding, dilation, groups):
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
    return out.astype(x.dtype)


@kernel(f"g (N, O, OH, OW), w as conv2d's, `input_shape` (N, C, H, W); {_CONV}; the "
        f"input gradient of conv2d (the transposed convolution), g's dtype")
def conv2d_grad_input(g, w, *, input_shape, stride, padding, dilation, groups):
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
    return grad[:, :, padding[0]:padding[0] + h, padding[1]:padding[1] + wd].astype(g.dtype)


@kernel(f"g (N, O, OH, OW), x (N, C, H, W), `weight_shape` (O, C // groups, kh, kw); {_CONV}; "
        f"the weight gradient of conv2d, g's dtype")
def conv2d_grad_weight(g, x, *, weight_shape, stride, padding, dilation, groups):
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
    return grad.astype(g.dtype)


def _conv(x, w, b=None, **attrs):
    return F.conv2d(x, w, b, **attrs)  # conv2d_bias when b is given


def _conv_attrs(stride=(1, 1), padding=(0, 0), dilation=(1, 1), groups=1) -> dict:
    return {"stride": stride, "padding": padding, "dilation": dilation, "groups": groups}


_CONV_CASES = (
    # label, x shape, w shape, attrs, x layout
    ("basic", (2, 3, 5, 5), (4, 3, 3, 3), _conv_attrs(), "c"),
    ("stride-padding", (1, 2, 6, 7), (3, 2, 3, 2), _conv_attrs((2, 1), (1, 0)), "c"),
    ("dilation", (1, 2, 7, 6), (2, 2, 3, 3), _conv_attrs(dilation=(2, 1), padding=(2, 1)), "c"),
    ("groups", (2, 4, 5, 5), (6, 2, 3, 3), _conv_attrs(groups=2), "c"),
    ("pointwise", (2, 3, 4, 4), (2, 3, 1, 1), _conv_attrs(), "c"),
    ("transposed", (1, 2, 5, 4), (2, 2, 2, 2), _conv_attrs(), "t"),
    ("strided", (1, 2, 4, 5), (3, 2, 2, 2), _conv_attrs(padding=(1, 1)), "s"),
)


def small(rng: np.random.Generator, shape: tuple, dtype: np.dtype) -> np.ndarray:
    return S.values(rng, shape, dtype, -1.0, 1.0)


def _conv_samples(rng: np.random.Generator, dtype: np.dtype) -> list[Sample]:
    return [Sample(label, (Arg(small(rng, xs, dtype), layout), Arg(small(rng, ws, dtype))),
                   attrs) for label, xs, ws, attrs, layout in _CONV_CASES]


def _conv_bias_samples(rng: np.random.Generator, dtype: np.dtype) -> list[Sample]:
    return [Sample(label, (Arg(small(rng, xs, dtype), layout), Arg(small(rng, ws, dtype)),
                           Arg(small(rng, (1, ws[0], 1, 1), dtype))), attrs)
            for label, xs, ws, attrs, layout in _CONV_CASES]


def _conv_out_shape(xs, ws, attrs) -> tuple:
    return (xs[0], ws[0]) + tuple(
        _out(size, k, s, p, d) for size, k, s, p, d in
        zip(xs[2:], ws[2:], attrs["stride"], attrs["padding"], attrs["dilation"]))


def _grad_input_samples(rng: np.random.Generator, dtype: np.dtype) -> list[Sample]:
    made = []
    for label, xs, ws, attrs, layout in _CONV_CASES:
        g = small(rng, _conv_out_shape(xs, ws, attrs), dtype)
        made.append(Sample(label, (Arg(g, layout if layout != "s" else "c"),
                                   Arg(small(rng, ws, dtype))), {**attrs, "input_shape": xs}))
    return made


def _grad_weight_samples(rng: np.random.Generator, dtype: np.dtype) -> list[Sample]:
    made = []
    for label, xs, ws, attrs, layout in _CONV_CASES:
        g = small(rng, _conv_out_shape(xs, ws, attrs), dtype)
        made.append(Sample(label, (Arg(g), Arg(small(rng, xs, dtype), layout)),
                           {**attrs, "weight_shape": ws}))
    return made


def applied(op: str):
    """A record function that calls the op directly (no public function reaches it alone)."""

    def call(*inputs, **attrs):
        return apply(op, *inputs, **attrs)

    call.__name__ = op
    return call


# -- pooling ----------------------------------------------------------------------------------
_POOL = "kernel_size, stride, padding are (h, w) pairs"


def _pool_hw(shape, kernel_size, stride, padding) -> tuple:
    return tuple(_out(size, k, s, p) for size, k, s, p in
                 zip(shape[2:], kernel_size, stride, padding))


@kernel(f"x (N, C, H, W); {_POOL}; the maximum of each window (padding never wins), x's dtype")
def max_pool2d(x, *, kernel_size, stride, padding):
    out_hw = _pool_hw(x.shape, kernel_size, stride, padding)
    xp = _pad(x, padding, -np.inf)
    out = np.full(x.shape[:2] + out_hw, -np.inf)
    for i in range(kernel_size[0]):
        for j in range(kernel_size[1]):
            out = np.maximum(out, _window(xp, i, j, out_hw, stride))
    return out.astype(x.dtype)


@kernel(f"g and y = max_pool2d(x) (N, C, OH, OW), x (N, C, H, W); {_POOL}; g sent to each "
        f"window's first maximum in row-major order, x's shape, g's dtype")
def max_pool2d_grad(g, x, y, *, kernel_size, stride, padding):
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
    return grad[:, :, padding[0]:padding[0] + h, padding[1]:padding[1] + w].astype(g.dtype)


def _counts(in_hw, kernel_size, stride, padding, out_hw, count_include_pad) -> np.ndarray:
    if count_include_pad:
        return np.full(out_hw, float(kernel_size[0] * kernel_size[1]))
    inside = _pad(np.ones((1, 1) + tuple(in_hw)), padding)
    total = np.zeros((1, 1) + tuple(out_hw))
    for i in range(kernel_size[0]):
        for j in range(kernel_size[1]):
            total = total + _window(inside, i, j, out_hw, stride)
    return total[0, 0]


@kernel(f"x (N, C, H, W); {_POOL}; `count_include_pad` says whether padded cells count in "
        f"the divisor; the mean of each window, x's dtype")
def avg_pool2d(x, *, kernel_size, stride, padding, count_include_pad):
    out_hw = _pool_hw(x.shape, kernel_size, stride, padding)
    xp = _pad(x.astype(np.float64), padding)
    total = np.zeros(x.shape[:2] + out_hw)
    for i in range(kernel_size[0]):
        for j in range(kernel_size[1]):
            total += _window(xp, i, j, out_hw, stride)
    counts = _counts(x.shape[2:], kernel_size, stride, padding, out_hw, count_include_pad)
    return (total / counts).astype(x.dtype)


@kernel(f"g (N, C, OH, OW), `input_shape` (N, C, H, W); {_POOL}, `count_include_pad`; each "
        f"window's g / count spread over it, g's dtype")
def avg_pool2d_grad(g, *, input_shape, kernel_size, stride, padding, count_include_pad):
    out_hw = g.shape[2:]
    h, w = input_shape[2:]
    counts = _counts((h, w), kernel_size, stride, padding, out_hw, count_include_pad)
    share = g.astype(np.float64) / counts
    grad = np.zeros(tuple(input_shape[:2]) + (h + 2 * padding[0], w + 2 * padding[1]))
    for i in range(kernel_size[0]):
        for j in range(kernel_size[1]):
            target = _window(grad, i, j, out_hw, stride)
            target += share
    return grad[:, :, padding[0]:padding[0] + h, padding[1]:padding[1] + w].astype(g.dtype)


_POOL_CASES = (
    # label, x shape, kernel, stride, padding, layout
    ("2x2", (2, 3, 6, 6), (2, 2), (2, 2), (0, 0), "c"),
    ("overlap-padding", (1, 2, 5, 7), (3, 3), (2, 2), (1, 1), "c"),
    ("rect-stride1", (1, 1, 4, 5), (2, 3), (1, 1), (0, 1), "c"),
    ("transposed", (1, 2, 4, 4), (2, 2), (2, 2), (0, 0), "t"),
    ("strided", (2, 1, 4, 6), (2, 2), (1, 2), (1, 0), "s"),
)


def _pool_attrs(kernel_size, stride, padding) -> dict:
    return {"kernel_size": kernel_size, "stride": stride, "padding": padding}


def _max_pool_samples(rng: np.random.Generator, dtype: np.dtype) -> list[Sample]:
    return [Sample(label, (Arg(S.distinct(rng, shape, dtype), layout),), _pool_attrs(k, s, p))
            for label, shape, k, s, p, layout in _POOL_CASES]


def _max_pool_grad_samples(rng: np.random.Generator, dtype: np.dtype) -> list[Sample]:
    made = []
    for label, shape, k, s, p, layout in _POOL_CASES:
        x = S.distinct(rng, shape, dtype)
        if label == "2x2":  # ties: the first maximum of a window takes the whole gradient
            x = np.round(x).astype(dtype)
        attrs = _pool_attrs(k, s, p)
        y = max_pool2d(x, **attrs)
        g = small(rng, y.shape, dtype)
        # x and y choose where g goes; moving them is a jump, so only g is differentiated.
        made.append(Sample(label, (Arg(g, layout), Arg(x, grad=False), Arg(y, grad=False)),
                           attrs))
    return made


def _avg_pool_samples(rng: np.random.Generator, dtype: np.dtype) -> list[Sample]:
    made = []
    for label, shape, k, s, p, layout in _POOL_CASES:
        for include in (False, True):
            if include and p == (0, 0):
                continue
            mode = "average" if include else "average_count_exclude_padding"
            made.append(Sample(f"{label}-{'include' if include else 'exclude'}",
                               (Arg(small(rng, shape, dtype), layout),),
                               {**_pool_attrs(k, s, p), "mode": mode}))
    return made


def _avg_pool(x, *, kernel_size, stride, padding, mode):
    return F.avg_pool2d(x, kernel_size, stride, padding, mode)


def _avg_pool_reference(x, *, kernel_size, stride, padding, mode):
    return avg_pool2d(x, kernel_size=kernel_size, stride=stride, padding=padding,
                      count_include_pad=mode == "average")


def _avg_pool_grad_samples(rng: np.random.Generator, dtype: np.dtype) -> list[Sample]:
    made = []
    for label, shape, k, s, p, layout in _POOL_CASES:
        out_hw = _pool_hw(shape, k, s, p)
        for include in (False, True):
            made.append(Sample(f"{label}-{'include' if include else 'exclude'}",
                               (Arg(small(rng, shape[:2] + out_hw, dtype), layout),),
                               {**_pool_attrs(k, s, p), "input_shape": shape,
                                "count_include_pad": include}))
    return made


register(
    OpRecord("conv2d", _conv, conv2d, _conv_samples, _FLOATS, tol=_F16),
    OpRecord("conv2d_bias", _conv, conv2d_bias, _conv_bias_samples, _FLOATS, tol=_F16),
    OpRecord("conv2d_grad_input", applied("conv2d_grad_input"), conv2d_grad_input,
             _grad_input_samples, _FLOATS, tol=_F16),
    OpRecord("conv2d_grad_weight", applied("conv2d_grad_weight"), conv2d_grad_weight,
             _grad_weight_samples, _FLOATS, tol=_F16),
    OpRecord("max_pool2d", F.max_pool2d, max_pool2d, _max_pool_samples, _FLOATS),
    OpRecord("max_pool2d_grad", applied("max_pool2d_grad"), max_pool2d_grad,
             _max_pool_grad_samples, _FLOATS),
    OpRecord("avg_pool2d", _avg_pool, _avg_pool_reference, _avg_pool_samples, _FLOATS),
    OpRecord("avg_pool2d_grad", applied("avg_pool2d_grad"), avg_pool2d_grad,
             _avg_pool_grad_samples, _FLOATS),
)
