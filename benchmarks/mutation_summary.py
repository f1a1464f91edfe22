"""Per-module counts of a mutmut run: generated, killed, survived, no tests, timeout.

Reads the ``mutants/**/*.py.meta`` files mutmut 3 writes; ``--survivors`` lists the surviving
mutants by name (``mutmut show NAME`` prints one's diff). Run by ``benchmarks/mutation.sh``.
"""
from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

from mutmut.stats import status_by_exit_code


def summarise(root: Path) -> dict[str, dict[str, list[str]]]:
    """module -> status -> mutant names."""
    modules: dict[str, dict[str, list[str]]] = {}
    for meta in sorted(root.glob("**/*.py.meta")):
        exit_codes = json.loads(meta.read_text())["exit_code_by_key"]
        module = str(meta.relative_to(root)).removesuffix(".meta")
        by_status = modules.setdefault(module, {})
        for name, code in exit_codes.items():
            by_status.setdefault(status_by_exit_code[code], []).append(name)
    return modules


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--root", type=Path, default=Path("mutants"))
    parser.add_argument("--survivors", action="store_true", help="list the surviving mutants")
    args = parser.parse_args()
    modules = summarise(args.root)
    columns = ["killed", "survived", "no tests", "timeout", "not checked"]
    print(f"| module | mutants | {' | '.join(columns)} | other |")
    print(f"| --- | ---: | {' | '.join('---:' for _ in columns)} | ---: |")
    total: Counter[str] = Counter()
    for module, by_status in modules.items():
        counts = Counter({status: len(names) for status, names in by_status.items()})
        total.update(counts)
        other = sum(n for status, n in counts.items() if status not in columns)
        print(f"| {module} | {sum(counts.values())} | "
              f"{' | '.join(str(counts[c]) for c in columns)} | {other} |")
    other = sum(n for status, n in total.items() if status not in columns)
    print(f"| all | {sum(total.values())} | {' | '.join(str(total[c]) for c in columns)} "
          f"| {other} |")
    if args.survivors:
        for by_status in modules.values():
            for name in by_status.get("survived", []):
                print(name)


if __name__ == "__main__":
    main()
