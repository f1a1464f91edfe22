"""The backend conformance suite, shipped with plugrad.

Run it against an installed backend plugin::

    python -m plugrad.conformance --backend NAME [--device DEV] [--xfails FILE] [-k EXPR]
    pytest -p plugrad.conformance.plugin --pyargs plugrad.conformance.tests --plugrad-backend NAME

The op table (:mod:`plugrad.conformance.table`) holds one record per way of calling an op: the
inputs to try, checked against the op's float64 reference from its declaration in
:mod:`plugrad.ops`; :mod:`plugrad.conformance.contract` renders the declared kernel signatures.
Modules that declare new ops add their records with :func:`register`.
"""
from plugrad.conformance.table import Arg, OpRecord, Sample, records, register

__all__ = ["Arg", "OpRecord", "Sample", "main", "records", "register"]


def main(argv: list[str] | None = None) -> int:
    """Run the suite (``python -m plugrad.conformance``); returns pytest's exit code."""
    from plugrad.conformance.cli import main as run

    return run(argv)
