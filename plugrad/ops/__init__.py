"""Every op declared once: name, kind, vjp (written with other ops) and decompositions.

Importing this package fills :data:`plugrad.core.registry.OPS`.
"""
from plugrad.ops import (
    activation,
    batch_norm,
    conv,
    creation,
    elementwise,
    indexing,
    linalg,
    nn,
    optim,
    pooling,
    reduction,
    shape,
    sorting,
)

__all__ = ["activation", "creation", "elementwise", "indexing", "linalg", "reduction", "shape",
           "conv", "pooling", "nn", "batch_norm", "sorting", "optim"]
