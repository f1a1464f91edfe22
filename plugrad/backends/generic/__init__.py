"""Every primitive written once against the Python Array API standard.

:func:`kernel_table` takes an array namespace that follows the standard (NumPy >= 2, CuPy,
``array_api_compat.torch``, ``jax.numpy``, ``array_api_strict``...) and returns a kernel for
every primitive plugrad declares, so a backend that brings only a namespace runs every op (the
composite ops run through their decompositions). A backend replaces entries where its own
library is faster. The kernels never write into their inputs, so they serve libraries whose
arrays are immutable.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from plugrad.backends.generic import (creation, elementwise, indexing, reductions, shape,
                                      sorting)

__all__ = ["REQUIRED_FUNCTIONS", "kernel_table", "missing_functions"]

#: What the generic kernels call on the namespace; a namespace lacking any of them is refused.
REQUIRED_FUNCTIONS: tuple[str, ...] = tuple(sorted(set(
    elementwise.NEEDS + reductions.NEEDS + shape.NEEDS + indexing.NEEDS + sorting.NEEDS
    + creation.NEEDS)))


def missing_functions(xp: Any) -> list[str]:
    """The functions of :data:`REQUIRED_FUNCTIONS` that ``xp`` lacks."""
    return [name for name in REQUIRED_FUNCTIONS if not hasattr(xp, name)]


def kernel_table(xp: Any, host_dtype: Callable[[Any], np.dtype]) -> dict[str, Callable]:
    """A kernel for every primitive, over the Array API namespace ``xp``.

    ``host_dtype`` maps one of the namespace's dtypes to the NumPy dtype of the same name (the
    random kernels draw on the host).
    """
    table: dict[str, Callable] = {}
    for family in (elementwise, reductions, shape, indexing, sorting):
        table.update(family.kernels(xp))
    table.update(creation.kernels(xp, host_dtype))
    return table
