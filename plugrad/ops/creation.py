"""Creation primitives: they take no tensor inputs, so they have no vjp."""
from __future__ import annotations

from plugrad.core.registry import primitive

for _name in ("full", "arange", "uniform", "normal"):
    primitive(_name, differentiable=False)
