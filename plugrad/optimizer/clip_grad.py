"""Gradient clipping: by global norm and by value, MegEngine's functions."""
from __future__ import annotations

from typing import Iterable

from plugrad.core.tensor import Tensor

__all__ = ["clip_grad_norm", "clip_grad_value"]


def _with_grads(op: str, tensors: Tensor | Iterable[Tensor]) -> list[tuple[Tensor, Tensor]]:
    """The tensors that have a gradient, each with it."""
    items = [tensors] if isinstance(tensors, Tensor) else list(tensors)
    for position, t in enumerate(items):
        if not isinstance(t, Tensor):
            raise TypeError(f"{op}: expected Tensors (usually model.parameters()); got "
                            f"{type(t).__name__} at position {position}")
    return [(t, t.grad) for t in items if t.grad is not None]


def clip_grad_norm(tensors: Tensor | Iterable[Tensor], max_norm: float,
                   ord: float = 2.0) -> Tensor:
    """Scale all gradients by ``max_norm / (total_norm + 1e-6)`` when that is below 1.

    ``total_norm`` is the ``ord``-norm of all the gradients taken together (as one vector).

    Returns:
        The total norm before clipping (a 0-d Tensor).

    Example:
        >>> total = clip_grad_norm(model.parameters(), max_norm=1.0)
    """
    from plugrad import functional as F

    if max_norm < 0:
        raise ValueError(f"clip_grad_norm: max_norm must be >= 0; got {max_norm}")
    grads = _with_grads("clip_grad_norm", tensors)
    if not grads:
        return F.zeros(())
    norms = [F.norm(F.flatten(grad), ord=ord) for _, grad in grads]
    total = norms[0] if len(norms) == 1 else F.norm(F.stack(norms), ord=ord)
    coef = F.minimum(max_norm / (total + 1e-6), 1.0)
    for t, grad in grads:
        # A new tensor, not an in-place scale: a gradient array may be shared by two tensors.
        t.grad = grad * coef
    return total


def clip_grad_value(tensors: Tensor | Iterable[Tensor], lower: float, upper: float) -> None:
    """Clamp every gradient element into ``[lower, upper]``."""
    from plugrad import functional as F

    if lower > upper:
        raise ValueError(f"clip_grad_value: lower ({lower}) must not exceed upper ({upper})")
    for t, grad in _with_grads("clip_grad_value", tensors):
        t.grad = F.clip(grad, lower, upper)
