"""Creation primitives: they take no tensor inputs, so they have no vjp.

``uniform`` and ``normal`` have no value reference: the conformance suite checks their statistics.
"""
from __future__ import annotations

import math

import numpy as np

from plugrad.core.registry import Spec, primitive


def _shaped_rule(op: str):
    def rule(*, shape: tuple[int, ...], dtype: np.dtype, **_: object) -> Spec:
        if any(s < 0 for s in shape):
            raise ValueError(f"{op}: shape {shape} has a negative dimension")
        return Spec(tuple(shape), np.dtype(dtype))

    return rule


def _full_reference(*, shape, value, dtype):
    return np.full(shape, value, dtype=np.float64 if np.dtype(dtype).kind == "f" else dtype)


def _arange_rule(*, start: float, stop: float, step: float, dtype: np.dtype) -> Spec:
    if step == 0:
        raise ValueError("arange: step must not be zero")
    return Spec((max(math.ceil((stop - start) / step), 0),), np.dtype(dtype))


def _arange_reference(*, start, stop, step, dtype):
    return np.arange(start, stop, step, dtype=np.float64 if np.dtype(dtype).kind == "f" else dtype)


primitive("full", "*, shape: tuple[int, ...], value: int | float | bool, dtype: numpy.dtype",
          rule=_shaped_rule("full"), reference=_full_reference, differentiable=False,
          doc="`shape` a tuple of ints, `value` a Python number, `dtype` a numpy.dtype")
primitive("arange", "*, start: int | float, stop: int | float, step: int | float, "
          "dtype: numpy.dtype", rule=_arange_rule, reference=_arange_reference,
          differentiable=False, doc="NumPy's arange: values in [start, stop) by step, of `dtype`")
primitive("uniform", "*, shape: tuple[int, ...], dtype: numpy.dtype, seed: int",
          rule=_shaped_rule("uniform"), reference=None, differentiable=False,
          doc="`shape` of `dtype` drawn from U[0, 1), reproducible from the int `seed`")
primitive("normal", "*, shape: tuple[int, ...], dtype: numpy.dtype, seed: int",
          rule=_shaped_rule("normal"), reference=None, differentiable=False,
          doc="`shape` of `dtype` drawn from N(0, 1), reproducible from the int `seed`")
