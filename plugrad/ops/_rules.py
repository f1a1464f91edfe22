"""Shape and dtype rules shared by the op declarations (JAX's "abstract evaluation").

A rule takes its inputs as anything with ``.shape`` (a tuple of ints) and ``.dtype`` (a NumPy
dtype), raw backend arrays or :class:`~plugrad.core.registry.Spec`, plus the op's attributes,
and returns the output's :class:`~plugrad.core.registry.Spec`, or raises the op's TypeError
(dtypes) or ValueError (shapes, values) reading "op: what is wrong; got X; expected Y". The
front end runs the rule before dispatch, the conformance suite checks every kernel's result
against it, and a tracer can infer shapes with it without running a kernel. Rules stay cheap:
they run on every public call.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from plugrad.core.dispatch import check_broadcast
from plugrad.core.registry import Spec

__all__ = [
    "Spec", "need_kind", "need_same_dtype", "need_ndim", "unary", "binary", "compare",
    "reduce_shape", "reduction", "KINDS", "FIXES",
]

Rule = Callable[..., Spec]

#: dtype kinds by what an op accepts, and how an error names them.
KINDS = {"f": "floating", "b": "bool", "iu": "integer", "fiu": "numeric", "fiub": "any"}
#: The usual fix when an input has the wrong kind.
FIXES = {"f": "cast with astype('float32') first",
         "b": "compare first, e.g. x > 0, or cast with astype('bool')",
         "fiu": "cast bools with astype('int32') first"}


def need_kind(op: str, what: str, x: Any, kinds: str, fix: str = "") -> None:
    """``x``'s dtype kind must be one of ``kinds`` (``"f"``, ``"iu"``...), else a TypeError."""
    if x.dtype.kind not in kinds:
        raise TypeError(f"{op}: expected {KINDS.get(kinds, kinds)} {what}; got {x.dtype}"
                        + (f"; {fix}" if fix else ""))


def need_same_dtype(op: str, *named: tuple[str, Any]) -> None:
    """Every named input shares the first one's dtype (the front end promotes before this)."""
    first_name, first = named[0]
    for name, x in named[1:]:
        if x.dtype != first.dtype:
            raise TypeError(f"{op}: {name} must have {first_name}'s dtype {first.dtype}; got "
                            f"{x.dtype}; promote or cast first")


def need_ndim(op: str, name: str, x: Any, ndim: int, layout: str = "") -> None:
    """``x`` has ``ndim`` axes, else a ValueError (with a hint when only the batch axis is off)."""
    rank = len(x.shape)
    if rank != ndim:
        hint = "; add a batch axis, e.g. F.expand_dims(x, 0)" if rank == ndim - 1 else ""
        raise ValueError(f"{op}: expected a {ndim}-D {name}{f' {layout}' if layout else ''}; "
                         f"got shape {tuple(x.shape)}{hint}")


def unary(op: str, kinds: str = "fiub") -> Rule:
    """Elementwise on one input: its shape and dtype, for inputs of the given kinds."""
    fix = FIXES.get(kinds, "")

    def rule(x: Any, **attrs: Any) -> Spec:  # attributes (leaky_relu's slope) change nothing
        if x.dtype.kind not in kinds:
            need_kind(op, "tensors", x, kinds, fix)
        return Spec(tuple(x.shape), x.dtype)

    rule.__name__ = f"{op}_rule"
    return rule


def binary(op: str, kinds: str = "fiub", out_dtype: Any = None) -> Rule:
    """Elementwise on two inputs of one dtype: the broadcast shape, and their dtype or out_dtype."""

    def rule(x: Any, y: Any) -> Spec:
        dtype = x.dtype
        if y.dtype != dtype or dtype.kind not in kinds:
            need_same_dtype(op, ("x", x), ("y", y))
            need_kind(op, "tensors", x, kinds, FIXES.get(kinds, ""))
        x_shape, y_shape = x.shape, y.shape
        shape = x_shape if x_shape == y_shape else check_broadcast(op, x_shape, y_shape)
        return Spec(shape, dtype if out_dtype is None else out_dtype)

    rule.__name__ = f"{op}_rule"
    return rule


def compare(op: str, kinds: str = "fiub") -> Rule:
    """A comparison: the broadcast shape, bool."""
    return binary(op, kinds, np.dtype(bool))


def reduce_shape(op: str, shape: Sequence[int], axis: Sequence[int] | None,
                 keepdims: bool) -> tuple[int, ...]:
    """The shape left by reducing ``axis`` (``None``: all), a sorted tuple of valid axes."""
    ndim = len(shape)
    if axis is None:
        return (1,) * ndim if keepdims else ()
    for a in axis:
        if a.__class__ is not int or not 0 <= a < ndim:
            raise ValueError(f"{op}: axis must be None or a sorted tuple of axes in [0, {ndim}); "
                             f"got {axis!r}")
    if keepdims:
        return tuple(1 if i in axis else s for i, s in enumerate(shape))
    return tuple(s for i, s in enumerate(shape) if i not in axis)


def reduction(op: str, kinds: str = "fiub", nonempty: str = "") -> Rule:
    """``op(x, *, axis, keepdims)`` keeping x's dtype; ``nonempty`` names what an empty x lacks."""

    def rule(x: Any, *, axis: tuple[int, ...] | None, keepdims: bool) -> Spec:
        if x.dtype.kind not in kinds:
            need_kind(op, "tensors", x, kinds, FIXES.get(kinds, ""))
        shape = tuple(x.shape)
        out = reduce_shape(op, shape, axis, keepdims)
        if nonempty and 0 in shape and 0 not in out and (axis is None or any(
                shape[a] == 0 for a in axis)):
            raise ValueError(f"{op}: cannot reduce an empty tensor of shape {shape}"
                             f"{'' if axis is None else f' over axes {axis}'}; it has no "
                             f"{nonempty}")
        return Spec(out, x.dtype)

    rule.__name__ = f"{op}_rule"
    return rule
