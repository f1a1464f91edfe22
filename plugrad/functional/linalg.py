"""Matrix products."""
from __future__ import annotations

import numpy as np

from plugrad.core.dispatch import apply, promote_pair
from plugrad.core.tensor import Tensor
from plugrad.functional.tensor import reshape, transpose

__all__ = ["matmul", "dot"]


def _swap_last(x: Tensor) -> Tensor:
    perm = tuple(range(x.ndim - 2)) + (x.ndim - 1, x.ndim - 2)
    return transpose(x, perm)


def matmul(inp1: Tensor, inp2: Tensor, transpose_a: bool = False, transpose_b: bool = False,
           compute_mode: str = "default", format: str = "default") -> Tensor:  # noqa: A002
    """Matrix product with NumPy's rules: 1-D operands are vectors, leading axes broadcast.

    Example:
        >>> matmul(Tensor([[1., 3., 5.], [2., 4., 6.]]), Tensor([[1., 2.], [3., 4.], [5., 6.]]))
        Tensor([[35. 44.]
         [44. 56.]], device=xpux:0)
    """
    a, b = promote_pair("matmul", inp1, inp2)
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError(f"matmul: operands must have at least one dimension; got shapes "
                         f"{a.shape} and {b.shape}")
    if transpose_a and a.ndim >= 2:
        a = _swap_last(a)
    if transpose_b and b.ndim >= 2:
        b = _swap_last(b)
    vector_a, vector_b = a.ndim == 1, b.ndim == 1
    if vector_a:
        a = reshape(a, (1, a.shape[0]))
    if vector_b:
        b = reshape(b, (b.shape[0], 1))
    if a.shape[-1] != b.shape[-2]:
        raise ValueError(f"matmul: shapes {tuple(inp1.shape)} and {tuple(inp2.shape)} are not "
                         f"aligned: the first's last dimension ({a.shape[-1]}) must equal the "
                         f"second's {'only' if vector_b else 'second-to-last'} dimension "
                         f"({b.shape[-2]})")
    try:
        if a.ndim > 2 or b.ndim > 2:  # batch dimensions to check (np.broadcast_shapes: ~2 us)
            np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    except ValueError:
        raise ValueError(f"matmul: batch dimensions {a.shape[:-2]} and {b.shape[:-2]} of shapes "
                         f"{tuple(inp1.shape)} and {tuple(inp2.shape)} cannot be broadcast"
                         ) from None
    out = apply("matmul", a, b)
    if vector_a or vector_b:
        shape = out.shape[:-2] + (() if vector_a else out.shape[-2:-1]) \
            + (() if vector_b else out.shape[-1:])
        out = reshape(out, shape)
    return out


def dot(inp1: Tensor, inp2: Tensor) -> Tensor:
    """Inner product of two vectors."""
    if inp1.ndim != 1 or inp2.ndim != 1:
        raise ValueError(f"dot: expects two 1-D tensors, got shapes {inp1.shape} and {inp2.shape}")
    return matmul(inp1, inp2)
