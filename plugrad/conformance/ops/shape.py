"""Records of the shape primitives: reshape, broadcast_to, transpose, pad, concat, copy."""
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
        _one("0d-to-1d", rng, dtype, (), target_shape=(1,)),
        _one("to-0d", rng, dtype, (1, 1), target_shape=()),
        _one("matrix", rng, dtype, (2, 3), target_shape=(3, 2)),
        _one("infer", rng, dtype, (6,), target_shape=(2, -1)),
        _one("empty", rng, dtype, (0, 3), target_shape=(3, 0)),
        _one("transposed", rng, dtype, (3, 4), "t", target_shape=(12,)),
        _one("strided", rng, dtype, (2, 5), "s", target_shape=(5, 2)),
    ]


def _reshape_reference(x: np.ndarray, target_shape: tuple) -> np.ndarray:
    return np.reshape(x, target_shape)


def _broadcast_samples(rng: np.random.Generator, dtype: np.dtype) -> list[Sample]:
    return [
        _one("0d", rng, dtype, (), shape=(2, 3)),
        _one("rank", rng, dtype, (3,), shape=(2, 3)),
        _one("unit-axis", rng, dtype, (2, 1), shape=(2, 4)),
        _one("empty", rng, dtype, (1, 0), shape=(3, 0)),
        _one("transposed", rng, dtype, (1, 3), "t", shape=(2, 1, 3)),
        _one("strided", rng, dtype, (1, 4), "s", shape=(3, 4)),
    ]


def _broadcast_reference(x: np.ndarray, shape: tuple) -> np.ndarray:
    return np.broadcast_to(x, shape)


def _transpose_samples(rng: np.random.Generator, dtype: np.dtype) -> list[Sample]:
    # A 0-d or identity pattern never reaches the kernel (the front end returns the input).
    return [
        _one("matrix", rng, dtype, (2, 3), pattern=None),
        _one("rank3", rng, dtype, (2, 3, 4), pattern=(1, 2, 0)),
        _one("empty", rng, dtype, (0, 2, 3), pattern=(2, 0, 1)),
        _one("transposed", rng, dtype, (3, 4), "t", pattern=(1, 0)),
        _one("strided", rng, dtype, (2, 3, 4), "s", pattern=(2, 1, 0)),
    ]


def _transpose_reference(x: np.ndarray, pattern) -> np.ndarray:
    return np.transpose(x, pattern)


def _pad_value(dtype: np.dtype):
    return True if dtype == np.bool_ else (3 if dtype.kind in "iu" else 1.5)


def _pad_samples(rng: np.random.Generator, dtype: np.dtype) -> list[Sample]:
    value = _pad_value(dtype)
    return [
        _one("vector", rng, dtype, (3,), pad_width=((1, 2),), constant_value=value),
        _one("matrix", rng, dtype, (2, 3), pad_width=((0, 1), (2, 0)), constant_value=value),
        _one("zero-width", rng, dtype, (2, 3), pad_width=((0, 0), (1, 0)), constant_value=0),
        _one("empty", rng, dtype, (0, 2), pad_width=((1, 1), (0, 0)), constant_value=value),
        _one("transposed", rng, dtype, (3, 4), "t", pad_width=((1, 0), (0, 2)),
             constant_value=value),
        _one("strided", rng, dtype, (2, 5), "s", pad_width=((1, 1), (1, 1)),
             constant_value=value),
    ]


def _pad(x, pad_width, constant_value):
    return F.pad(x, pad_width, constant_value=constant_value)


def _pad_reference(x: np.ndarray, pad_width, constant_value) -> np.ndarray:
    return np.pad(x, pad_width, mode="constant", constant_values=constant_value)


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


def _concat_reference(*xs: np.ndarray, axis: int) -> np.ndarray:
    return np.concatenate(xs, axis=axis)


def _copy_reference(x: np.ndarray) -> np.ndarray:
    return np.array(x, copy=True)


register(
    OpRecord("reshape", F.reshape, _reshape_reference, _reshape_samples, ALL_DTYPES),
    OpRecord("broadcast_to", F.broadcast_to, _broadcast_reference, _broadcast_samples, ALL_DTYPES),
    OpRecord("transpose", F.transpose, _transpose_reference, _transpose_samples, ALL_DTYPES),
    OpRecord("pad", _pad, _pad_reference, _pad_samples, ALL_DTYPES),
    OpRecord("concat", _concat, _concat_reference, _concat_samples, ALL_DTYPES),
    OpRecord("copy", F.copy, _copy_reference, S.unary_samples(), ALL_DTYPES),
)
