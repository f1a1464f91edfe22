"""The kernel contract, generated from the op declarations in :mod:`plugrad.ops`.

A kernel receives raw arrays positionally and the op's attributes as keywords; plugrad's front
end has already checked them with the op's shape and dtype rule. What each kernel must return is
that rule's output (the suite checks every kernel call against it) with the values of the op's
float64 reference. ``docs/backends.md`` shows the tables :func:`markdown_table` generates, and
``python -m plugrad.conformance --kernel-table`` prints them (a test keeps the two in step).
"""
from __future__ import annotations

import plugrad.ops  # noqa: F401  (the declarations fill OPS)
from plugrad.core.registry import OPS, DeclaredOp

__all__ = ["signature", "markdown_table", "undeclared_ops"]


def signature(op: str) -> str:
    """``op``'s kernel signature, e.g. ``cast(x, *, dtype: numpy.dtype)``."""
    return f"{op}({OPS[op].signature.text})"


def undeclared_ops() -> list[str]:
    """Ops declared without a signature or a shape rule (every op needs both)."""
    return sorted(name for name, op in OPS.items() if op.signature is None or op.rule is None)


def _row(op: DeclaredOp) -> str:
    aliases = ", ".join(f"`{a}`" for a in op.aliases)
    cells = (f"`{op.name}`", f"`{signature(op.name)}`", op.doc, aliases)
    return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"


def markdown_table(primitive: bool) -> str:
    """The table of required primitives (or optional fused ops) shown in docs/backends.md."""
    rows = ["| op | kernel signature | returns | also called |", "| --- | --- | --- | --- |"]
    rows += [_row(OPS[name]) for name in sorted(OPS) if OPS[name].primitive == primitive]
    return "\n".join(rows)

