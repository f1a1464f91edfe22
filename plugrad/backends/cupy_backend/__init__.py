"""The GPU backend: CuPy kernels for the ``gpu`` device type.

``plugin`` is the entry point and imports no CuPy; ``kernels`` builds the table from the numpy
backend's array-module-generic code run with ``cupy``, plus the CUDA kernels in ``fused`` and
``random`` and the scatter kernels in ``indexing``.
"""
from __future__ import annotations

__all__ = ["fused", "indexing", "kernels", "plugin", "random"]
