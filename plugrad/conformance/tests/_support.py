"""What the test modules share: turning a missing primitive into one reported failure."""
from __future__ import annotations

import contextlib
from typing import Iterator

import pytest

from plugrad.conformance.target import Target


@contextlib.contextmanager
def blocked_by_missing(target: Target, ops: tuple[str, ...] = ()) -> Iterator[None]:
    """Skip, naming the primitive, when a check needs one the backend lacks.

    The lack itself fails ``test_required_primitives`` once, with the full list; repeating that
    failure in every op test would bury it.
    """
    missing = target.missing
    lacking = [op for op in ops if op in missing]
    if lacking:
        pytest.skip(f"blocked: backend {target.backend!r} lacks the required primitive(s) "
                    f"{', '.join(lacking)}; see test_required_primitives")
    try:
        yield
    except NotImplementedError as exc:
        named = [op for op in missing if f"primitive {op!r}" in str(exc)]
        if not named:
            raise
        pytest.skip(f"blocked: backend {target.backend!r} lacks the required primitive "
                    f"{named[0]!r}; see test_required_primitives")
