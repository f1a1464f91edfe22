"""The backend conformance suite, shipped with plugrad.

Run it against an installed backend plugin::

    python -m plugrad.conformance --backend NAME [--device DEV] [--xfails FILE] [-k EXPR]
    pytest -p plugrad.conformance.plugin --pyargs plugrad.conformance.tests --plugrad-backend NAME

The op table (:mod:`plugrad.conformance.table`) holds one record per way of calling an op, each
with a float64 NumPy reference; :mod:`plugrad.conformance.contract` holds every kernel's exact
signature. Modules that declare new ops extend both with :func:`register` and :func:`kernel`.
"""
from plugrad.conformance.contract import CONTRACT, KernelSpec, kernel
from plugrad.conformance.table import Arg, OpRecord, Sample, records, register

__all__ = ["Arg", "CONTRACT", "KernelSpec", "OpRecord", "Sample", "kernel", "main", "records",
           "register"]


def main(argv: list[str] | None = None) -> int:
    """Run the suite (``python -m plugrad.conformance``); returns pytest's exit code."""
    from plugrad.conformance.cli import main as run

    return run(argv)
