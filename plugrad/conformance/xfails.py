"""Known gaps of a backend: test-id patterns with a reason, marked as strict expected failures.

Two formats. Plain text, one entry a line, ``#`` starting a comment::

    test_forward[pow-float16-*]    # float16 pow rounds differently; tracked in issue 12
    test_devices.py::test_transfer*  # no second device on this machine

or TOML (a file ending in ``.toml``)::

    [[xfail]]
    test = "test_forward[pow-float16-*]"
    reason = "float16 pow rounds differently"

A pattern matches a test's name (``test_forward[add-float32-0d]``) or the tail of its node id;
``*`` matches any run of characters and ``?`` one character (brackets are literal). An entry
whose test now passes fails the run (strict xfail), so stale entries are noticed.
"""
from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["XfailEntry", "XfailError", "load", "match"]


class XfailError(Exception):
    """The xfail file cannot be read; the message names the file and line."""


@dataclass
class XfailEntry:
    pattern: str
    reason: str
    where: str
    hits: int = 0
    _regex: re.Pattern = field(init=False, repr=False)

    def __post_init__(self) -> None:
        body = re.escape(self.pattern).replace(r"\*", ".*").replace(r"\?", ".")
        self._regex = re.compile(f"(?:^|.*(?:/|::)){body}$")

    def matches(self, name: str, nodeid: str) -> bool:
        return bool(self._regex.match(name) or self._regex.match(nodeid))


def _parse_text(path: Path, text: str) -> list[XfailEntry]:
    entries = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        pattern, _, rest = line.partition(" ")
        reason = rest.strip().lstrip("#").strip() or "known gap (no reason given)"
        entries.append(XfailEntry(pattern, reason, f"{path}:{number}"))
    return entries


def _parse_toml(path: Path, text: str) -> list[XfailEntry]:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10 has tomli as a separate package
        try:
            import tomli as tomllib
        except ImportError as exc:
            raise XfailError(f"{path}: reading TOML on Python 3.10 needs 'tomli'; install it or "
                             f"use the plain-text format") from exc
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise XfailError(f"{path}: invalid TOML: {exc}") from exc
    items = data.get("xfail", [])
    if not isinstance(items, list):
        raise XfailError(f"{path}: 'xfail' must be an array of tables ([[xfail]]); got "
                         f"{type(items).__name__}")
    entries = []
    for number, item in enumerate(items, 1):
        if not isinstance(item, dict) or not isinstance(item.get("test"), str):
            raise XfailError(f"{path}: [[xfail]] entry {number} needs a string 'test' pattern; "
                             f"got {item!r}")
        reason = str(item.get("reason") or "known gap (no reason given)")
        entries.append(XfailEntry(item["test"], reason, f"{path} entry {number}"))
    return entries


def load(path: str | Path) -> list[XfailEntry]:
    """Parse an xfail file (TOML if it ends in ``.toml``, plain text otherwise)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise XfailError(f"--xfails {path}: cannot read it: {exc.strerror or exc}") from exc
    if path.suffix == ".toml":
        return _parse_toml(path, text)
    return _parse_text(path, text)


def match(entries: list[XfailEntry], name: str, nodeid: str) -> XfailEntry | None:
    """The first entry matching a test, counting the hit (unused entries are reported)."""
    for entry in entries:
        if entry.matches(name, nodeid):
            entry.hits += 1
            return entry
    return None
