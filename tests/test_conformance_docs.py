"""docs/backends.md stays true: kernel tables, DeviceType fields and hooks match the code."""
from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

import plugrad
from plugrad import hookspecs
from plugrad.conformance.contract import markdown_table
from plugrad.core.backend import DeviceType

DOC = Path(plugrad.__file__).resolve().parents[1] / "docs" / "backends.md"


@pytest.fixture(scope="module")
def text() -> str:
    return DOC.read_text(encoding="utf-8")


def _block(text: str, kind: str) -> str:
    match = re.search(rf"<!-- kernel-table: {kind} -->\n(.*?)\n<!-- /kernel-table -->", text,
                      re.DOTALL)
    assert match, f"docs/backends.md: no '<!-- kernel-table: {kind} -->' block"
    return match.group(1).strip()


@pytest.mark.parametrize("kind, primitive", [("required", True), ("optional", False)])
def test_kernel_tables_match_the_contract(text, kind, primitive):
    """Regenerate with: python -m plugrad.conformance --kernel-table."""
    assert _block(text, kind) == markdown_table(primitive), (
        f"docs/backends.md: the {kind} kernel table is out of date; paste the output of "
        f"'python -m plugrad.conformance --kernel-table' between the markers")


def test_every_devicetype_field_is_documented(text):
    rows = set(re.findall(r"^\| `(\w+)`", text, re.MULTILINE))
    fields = {f.name for f in dataclasses.fields(DeviceType)}
    assert fields <= rows, f"docs/backends.md does not describe DeviceType fields " \
                           f"{sorted(fields - rows)}"


def test_hooks_and_entry_point_group_are_documented(text):
    for name in ("PLUGRAD_API_VERSION", "plugrad_register", "add_device_type", "API_VERSION"):
        assert re.search(rf"\b{name}\b", text), f"docs/backends.md never mentions {name}"
    assert '[project.entry-points."plugrad.backends"]' in text
    assert all(hasattr(hookspecs, name) for name in hookspecs.__all__)
