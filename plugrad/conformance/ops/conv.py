"""Records of convolution and pooling, with their gradient ops.

Every op here is a composite with a decomposition into primitives, so a backend may fuse any of
them. The expected values come from the ops' declared references
(:mod:`plugrad.ops._window_reference`: direct float64 loops over kernel offsets, nothing shared
with plugrad's decompositions or kernels).
"""
from __future__ import annotations

import numpy as np

from plugrad import functional as F
from plugrad.conformance import samples as S
from plugrad.conformance.table import Arg, OpRecord, Sample, declared_reference, register
from plugrad.core.dispatch import apply
from plugrad.ops._windows import out_size
from plugrad.ops.pooling import pool_out_hw

__all__ = ["applied", "small"]

_FLOATS = ("float16", "float32", "float64")
_F16 = {"float16": (2e-2, 5e-2)}


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
        out_size(size, k, s, p, d) for size, k, s, p, d in
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
        y = np.asarray(declared_reference("max_pool2d")(x, **attrs)).astype(dtype)
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
            made.append(Sample(f"{label}-{'include' if include else 'exclude'}",
                               (Arg(small(rng, shape, dtype), layout),),
                               {**_pool_attrs(k, s, p), "count_include_pad": include}))
    return made


def _avg_pool(x, *, kernel_size, stride, padding, count_include_pad):
    mode = "average" if count_include_pad else "average_count_exclude_padding"
    return F.avg_pool2d(x, kernel_size, stride, padding, mode)


def _avg_pool_grad_samples(rng: np.random.Generator, dtype: np.dtype) -> list[Sample]:
    made = []
    for label, shape, k, s, p, layout in _POOL_CASES:
        out_hw = pool_out_hw(shape[2:], k, s, p)
        for include in (False, True):
            made.append(Sample(f"{label}-{'include' if include else 'exclude'}",
                               (Arg(small(rng, shape[:2] + out_hw, dtype), layout),),
                               {**_pool_attrs(k, s, p), "input_shape": shape,
                                "count_include_pad": include}))
    return made


register(
    OpRecord("conv2d", _conv, None, _conv_samples, _FLOATS, tol=_F16),
    OpRecord("conv2d_bias", _conv, None, _conv_bias_samples, _FLOATS, tol=_F16),
    OpRecord("conv2d_grad_input", applied("conv2d_grad_input"), None, _grad_input_samples,
             _FLOATS, tol=_F16),
    OpRecord("conv2d_grad_weight", applied("conv2d_grad_weight"), None, _grad_weight_samples,
             _FLOATS, tol=_F16),
    OpRecord("max_pool2d", F.max_pool2d, None, _max_pool_samples, _FLOATS),
    OpRecord("max_pool2d_grad", applied("max_pool2d_grad"), None, _max_pool_grad_samples,
             _FLOATS),
    OpRecord("avg_pool2d", _avg_pool, None, _avg_pool_samples, _FLOATS),
    OpRecord("avg_pool2d_grad", applied("avg_pool2d_grad"), None, _avg_pool_grad_samples,
             _FLOATS),
)
