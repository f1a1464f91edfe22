"""Records of the shape primitives: reshape, broadcast_to, transpose, pad, concat, copy.

Samples give the ops' own attributes; the record functions pass them to the public functions.
"""
from __future__ import annotations

import numpy as np

from plugrad import functional as F
from plugrad.conformance import samples as S
from plugrad.conformance.table import ALL_DTYPES, Arg, OpRecord, Sample, register


def _one(label: str, rng: np.random.Generator, dtype: np.dtype, in_shape: tuple,
         layout: str = "c", **kwargs) -> Sample:
    return Sample(label, (Arg(S.values(rng, in_shape, dtype), layout),), kwargs)


def _reshape_samples(rng: np.random.Generator, dtype: np.dtype) -> list[Sample]:
    return [
        _one("0d-to-1d", rng, dtype, (), shape=(1,)),
        _one("to-0d", rng, dtype, (1, 1), shape=()),
        _one("matrix", rng, dtype, (2, 3), shape=(3, 2)),
        _one("infer", rng, dtype, (6,), shape=(2, -1)),
        _one("empty", rng, dtype, (0, 3), shape=(3, 0)),
        _one("transposed", rng, dtype, (3, 4), "t", shape=(12,)),
        _one("strided", rng, dtype, (2, 5), "s", shape=(5, 2)),
    ]


def _reshape(x, *, shape):
    return F.reshape(x, shape)


def _broadcast_samples(rng: np.random.Generator, dtype: np.dtype) -> list[Sample]:
    return [
        _one("0d", rng, dtype, (), shape=(2, 3)),
        _one("rank", rng, dtype, (3,), shape=(2, 3)),
        _one("unit-axis", rng, dtype, (2, 1), shape=(2, 4)),
        _one("empty", rng, dtype, (1, 0), shape=(3, 0)),
        _one("transposed", rng, dtype, (1, 3), "t", shape=(2, 1, 3)),
        _one("strided", rng, dtype, (1, 4), "s", shape=(3, 4)),
    ]


def _transpose_samples(rng: np.random.Generator, dtype: np.dtype) -> list[Sample]:
    # A 0-d or identity pattern never reaches the kernel (the front end returns the input).
    return [
        _one("matrix", rng, dtype, (2, 3), perm=None),
        _one("rank3", rng, dtype, (2, 3, 4), perm=(1, 2, 0)),
        _one("empty", rng, dtype, (0, 2, 3), perm=(2, 0, 1)),
        _one("transposed", rng, dtype, (3, 4), "t", perm=(1, 0)),
        _one("strided", rng, dtype, (2, 3, 4), "s", perm=(2, 1, 0)),
    ]


def _transpose(x, *, perm):
    return F.transpose(x, perm)


def _pad_value(dtype: np.dtype):
    return True if dtype == np.bool_ else (3 if dtype.kind in "iu" else 1.5)


def _pad_samples(rng: np.random.Generator, dtype: np.dtype) -> list[Sample]:
    value = _pad_value(dtype)
    return [
        _one("vector", rng, dtype, (3,), pad_width=((1, 2),), value=value),
        _one("matrix", rng, dtype, (2, 3), pad_width=((0, 1), (2, 0)), value=value),
        _one("zero-width", rng, dtype, (2, 3), pad_width=((0, 0), (1, 0)), value=0),
        _one("empty", rng, dtype, (0, 2), pad_width=((1, 1), (0, 0)), value=value),
        _one("transposed", rng, dtype, (3, 4), "t", pad_width=((1, 0), (0, 2)),
             value=value),
        _one("strided", rng, dtype, (2, 5), "s", pad_width=((1, 1), (1, 1)),
             value=value),
    ]


def _pad(x, *, pad_width, value):
    return F.pad(x, pad_width, constant_value=value)


def _concat_samples(rng: np.random.Generator, dtype: np.dtype) -> list[Sample]:
    def arg(shape: tuple, layout: str = "c") -> Arg:
        return Arg(S.values(rng, shape, dtype), layout)

    return [
        Sample("vectors", (arg((2,)), arg((3,))), {"axis": 0}),
        Sample("three", (arg((2, 1)), arg((2, 3)), arg((2, 2))), {"axis": 1}),
        Sample("empty-member", (arg((2, 0)), arg((2, 3))), {"axis": -1}),
        Sample("empty", (arg((0, 3)), arg((0, 3))), {"axis": 0}),
        Sample("transposed", (arg((3, 4), "t"), arg((1, 4))), {"axis": 0}),
        Sample("strided", (arg((2, 5), "s"), arg((2, 2), "t")), {"axis": 1}),
    ]


def _concat(*xs, axis):
    return F.concat(xs, axis)


register(
    OpRecord("reshape", _reshape, None, _reshape_samples, ALL_DTYPES),
    OpRecord("broadcast_to", F.broadcast_to, None, _broadcast_samples, ALL_DTYPES),
    OpRecord("transpose", _transpose, None, _transpose_samples, ALL_DTYPES),
    OpRecord("pad", _pad, None, _pad_samples, ALL_DTYPES),
    OpRecord("concat", _concat, None, _concat_samples, ALL_DTYPES),
    OpRecord("copy", F.copy, None, S.unary_samples(), ALL_DTYPES),
)
