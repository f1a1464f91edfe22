"""The sorting primitive: ``argsort``, a stable ordering along one axis.

``sort`` and ``topk`` are not ops of their own: they gather ``x`` at the ordering (and slice
it), so their gradient is gather's vjp and a backend implements one kernel for all three.
"""
from __future__ import annotations

from plugrad.core.registry import primitive

# Integer positions: nothing to differentiate (the values flow through gather).
primitive("argsort", differentiable=False,
          doc="int32 positions that sort x along axis; ties keep their order in x")
