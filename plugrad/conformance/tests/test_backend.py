"""The backend as a whole: required primitives, a well-formed kernel table, a complete op table."""
from __future__ import annotations

import difflib

import pytest

from plugrad.conformance import contract, table
from plugrad.core.registry import OPS


def test_required_primitives(target):
    """Every primitive in OPS has a kernel; all missing ones are listed in this one failure."""
    missing = target.missing
    if missing:
        pytest.fail(f"backend {target.backend!r} ({target.source}), device type "
                    f"{target.device_type.name!r}: {len(missing)} required primitive(s) have no "
                    f"kernel: {', '.join(missing)}; expected every primitive in "
                    f"plugrad.core.registry.OPS (docs/backends.md lists their signatures)",
                    pytrace=False)


def test_kernel_table_is_well_formed(target):
    """Kernels are callables under names plugrad knows (a typo would silently go unused)."""
    kernels = target.device_type.load_kernels()
    problems = [f"{name!r} is a {type(kernel).__name__}, not a callable"
                for name, kernel in kernels.items() if not callable(kernel)]
    for name in sorted(set(kernels) - set(OPS)):
        close = difflib.get_close_matches(name, list(OPS), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        problems.append(f"{name!r} is not an op plugrad knows{hint}")
    if problems:
        pytest.fail(f"backend {target.backend!r}, device type {target.device_type.name!r}: its "
                    f"kernel table is malformed: {'; '.join(problems)}", pytrace=False)


def test_op_table_covers_every_op():
    """Each op in OPS has a conformance record, so a new op cannot go untested."""
    uncovered = table.uncovered_ops()
    assert not uncovered, (
        f"conformance: ops without a record: {uncovered}; add records for them with "
        f"plugrad.conformance.table.register() in a module listed in "
        f"plugrad.conformance.ops.MODULES")


def test_every_op_declares_its_kernel_signature_and_shape_rule():
    """Each op declares its kernel signature and shape rule: docs and the shape checks read them."""
    undeclared = contract.undeclared_ops()
    assert not undeclared, (
        f"conformance: ops declared without a signature or shape rule: {undeclared}; declare "
        f"each with plugrad.core.registry.primitive() or composite()")
