"""The built-in record modules, one per family of ops (mirroring ``plugrad/ops``).

To cover a new family of ops, write a module that calls
:func:`plugrad.conformance.table.register` and add its import path to :data:`MODULES`; the
op's signature, shape rule and reference come from its declaration in :mod:`plugrad.ops`. A test
fails while any op in ``OPS`` has no record, so a new op cannot be forgotten.
"""
from __future__ import annotations

import importlib

__all__ = ["MODULES", "load"]

MODULES: list[str] = [
    "plugrad.conformance.ops.elementwise",
    "plugrad.conformance.ops.reduction",
    "plugrad.conformance.ops.shape",
    "plugrad.conformance.ops.indexing",
    "plugrad.conformance.ops.linalg",
    "plugrad.conformance.ops.activation",
    "plugrad.conformance.ops.creation",
    "plugrad.conformance.ops.conv",
    "plugrad.conformance.ops.nn",
    "plugrad.conformance.ops.batch_norm",
    "plugrad.conformance.ops.sorting",
    "plugrad.conformance.ops.composed",
    "plugrad.conformance.ops.optim",
]

_loaded: set[str] = set()


def load() -> None:
    """Import every module in :data:`MODULES` once (each registers its records on import)."""
    for name in MODULES:
        if name not in _loaded:
            importlib.import_module(name)
            _loaded.add(name)
