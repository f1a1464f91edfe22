"""The sorting primitive: ``argsort``, a stable ordering along one axis.

``sort`` and ``topk`` are not ops of their own: they gather ``x`` at the ordering (and slice
it), so their gradient is gather's vjp and a backend implements one kernel for all three.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from plugrad.core.registry import Spec, primitive


def _argsort_rule(x: Any, *, axis: int, descending: bool) -> Spec:
    shape = x.shape
    if axis.__class__ is not int or not 0 <= axis < len(shape):
        raise ValueError(f"argsort: axis {axis!r} is out of range for shape {tuple(shape)}; "
                         f"expected an int in [0, {len(shape)})")
    return Spec(shape, np.dtype(np.int32))


def _argsort_reference(x, *, axis, descending):
    key = np.asarray(x, dtype=np.float64)
    return np.argsort(-key if descending else key, axis=axis, kind="stable")


# Integer positions: nothing to differentiate (the values flow through gather).
primitive("argsort", "x, *, axis: int, descending: bool", rule=_argsort_rule,
          reference=_argsort_reference, differentiable=False,
          doc="x of 1 or more dimensions, `axis` an int in [0, x.ndim), `descending` a bool; int32 "
              "positions that sort x along axis, equal values in their order in x (stable); x's "
              "shape")
