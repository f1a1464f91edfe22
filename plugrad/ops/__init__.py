"""Every op declared once: name, kind, vjp (written with other ops) and decompositions.

Importing this package fills :data:`plugrad.core.registry.OPS`.
"""
from plugrad.ops import activation, creation, elementwise, indexing, linalg, reduction, shape
from plugrad.ops import batch_norm, conv, nn, optim, pooling, sorting

__all__ = ["activation", "creation", "elementwise", "indexing", "linalg", "reduction", "shape",
           "conv", "pooling", "nn", "batch_norm", "sorting", "optim"]
