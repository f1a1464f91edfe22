"""Records of the indexing primitives: getitem, setitem, index_add, gather, scatter_add."""
from __future__ import annotations

import numpy as np

from plugrad import functional as F
from plugrad.conformance import samples as S
from plugrad.conformance.table import ALL_DTYPES, FLOATS, NUMERIC, Arg, OpRecord, Sample, register
from plugrad.core.dispatch import apply
from plugrad.functional.tensor import _normalize_index

_I32 = np.int32


def _getitem_samples(rng: np.random.Generator, dtype: np.dtype) -> list[Sample]:
    def x(shape: tuple, layout: str = "c") -> Arg:
        return Arg(S.values(rng, shape, dtype), layout)

    return [
        Sample("0d", (x(()),), {"index": ()}),
        Sample("int", (x((5,)),), {"index": 2}),
        Sample("slices", (x((4, 5)),), {"index": (slice(1, 3), slice(None, None, 2))}),
        Sample("reversed", (x((5,)),), {"index": slice(None, None, -1)}),
        Sample("newaxis-ellipsis", (x((2, 3, 4)),), {"index": (None, Ellipsis, 1)}),
        # Repeated indices: the gradient must accumulate (index_add).
        Sample("int-array", (x((4, 3)),), {"index": np.array([2, 0, 2], dtype=_I32)}),
        Sample("bool-mask", (x((3, 4)),), {"index": rng.random((3, 4)) < 0.5}),
        Sample("empty-slice", (x((3, 4)),), {"index": slice(2, 2)}),
        Sample("transposed", (x((3, 4), "t"),), {"index": (1, slice(None))}),
        Sample("strided", (x((2, 6), "s"),), {"index": (slice(None), np.array([0, 2], _I32))}),
    ]


def _setitem_samples(rng: np.random.Generator, dtype: np.dtype) -> list[Sample]:
    def arg(shape: tuple, layout: str = "c") -> Arg:
        return Arg(S.values(rng, shape, dtype), layout)

    mask = rng.random((3, 4)) < 0.5
    return [
        Sample("0d", (arg(()), arg(())), {"index": ()}),
        Sample("int", (arg((5,)), arg(())), {"index": 3}),
        Sample("slice-broadcast", (arg((4, 3)), arg((1, 3))), {"index": slice(1, 3)}),
        Sample("bool-mask", (arg((3, 4)), arg(())), {"index": mask}),
        Sample("int-array", (arg((4, 3)), arg((2, 3))), {"index": np.array([3, 1], _I32)}),
        Sample("empty", (arg((3, 4)), arg((0, 4))), {"index": slice(1, 1)}),
        Sample("transposed", (arg((3, 4), "t"), arg((4,), "s")), {"index": 0}),
    ]


def _setitem(x, value, index):
    return F.setitem(x, index, value)


def _index_add_samples(rng: np.random.Generator, dtype: np.dtype) -> list[Sample]:
    def arg(shape: tuple, layout: str = "c") -> Arg:
        return Arg(S.values(rng, shape, dtype), layout)

    return [
        Sample("0d", (arg(()), arg(())), {"index": ()}),
        Sample("repeated", (arg((4, 3)), arg((4, 3))), {"index": np.array([1, 0, 1, 1], _I32)}),
        Sample("slice", (arg((5,)), arg((2,))), {"index": slice(1, 5, 2)}),
        Sample("empty", (arg((3, 2)), arg((0, 2))), {"index": np.array([], _I32)}),
        Sample("transposed", (arg((3, 4), "t"), arg((3,), "s")), {"index": (slice(None), 2)}),
    ]


def _index_add(x, value, index):
    # No public function reaches index_add directly: it is getitem's vjp.
    return apply("index_add", x, value, index=_normalize_index(x, index))


def _index(rng: np.random.Generator, shape: tuple, bound: int) -> Arg:
    return Arg(rng.integers(0, bound, size=shape).astype(_I32))


def _gather_samples(rng: np.random.Generator, dtype: np.dtype) -> list[Sample]:
    def x(shape: tuple, layout: str = "c") -> Arg:
        return Arg(S.values(rng, shape, dtype), layout)

    return [
        Sample("axis0", (x((3, 4)), _index(rng, (2, 4), 3)), {"axis": 0}),
        Sample("axis1-repeats", (x((3, 4)), _index(rng, (3, 6), 4)), {"axis": 1}),
        Sample("vector", (x((5,)), _index(rng, (3,), 5)), {"axis": 0}),
        Sample("empty", (x((3, 4)), _index(rng, (3, 0), 4)), {"axis": 1}),
        Sample("transposed", (x((4, 3), "t"), _index(rng, (2, 3), 4)), {"axis": 0}),
        Sample("strided", (x((2, 5), "s"), _index(rng, (2, 2), 5)), {"axis": -1}),
    ]


def _gather(x, index, axis):
    return F.gather(x, axis, index)


def _scatter_samples(rng: np.random.Generator, dtype: np.dtype) -> list[Sample]:
    def arg(shape: tuple, layout: str = "c") -> Arg:
        return Arg(S.values(rng, shape, dtype), layout)

    return [
        Sample("axis0", (arg((3, 4)), _index(rng, (2, 4), 3), arg((2, 4))), {"axis": 0}),
        Sample("axis1-repeats", (arg((3, 4)), _index(rng, (3, 6), 4), arg((3, 6))), {"axis": 1}),
        Sample("vector", (arg((5,)), _index(rng, (3,), 5), arg((3,))), {"axis": 0}),
        Sample("empty", (arg((3, 4)), _index(rng, (3, 0), 4), arg((3, 0))), {"axis": 1}),
        Sample("transposed", (arg((4, 3), "t"), _index(rng, (2, 3), 4), arg((2, 3), "t")),
               {"axis": 0}),
    ]


def _scatter_add(x, index, value, axis):
    return F.scatter_add(x, axis, index, value)


register(
    OpRecord("getitem", F.getitem, None, _getitem_samples, ALL_DTYPES),
    OpRecord("setitem", _setitem, None, _setitem_samples, ALL_DTYPES),
    OpRecord("index_add", _index_add, None, _index_add_samples,
             FLOATS + ("int32",)),
    OpRecord("gather", _gather, None, _gather_samples, ALL_DTYPES),
    OpRecord("scatter_add", _scatter_add, None, _scatter_samples, NUMERIC),
)
