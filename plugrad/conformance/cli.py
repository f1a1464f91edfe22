"""Command line of the suite: translate friendly options into one in-process pytest run.

The run is isolated from the caller's pytest configuration (``-c`` points at an empty file), so a
project's ``addopts`` or conftest cannot change what certifying a backend means. Options this
command does not know are passed to pytest unchanged (``-x``, ``-q``, ``--tb=short``...).
"""
from __future__ import annotations

import argparse
import os
import sys

from plugrad.cli import DescriptionFormatter

__all__ = ["build_pytest_args", "main"]

_EPILOG = """\
examples:
  python -m plugrad.conformance --backend numpy
  python -m plugrad.conformance --backend ref --device ref1 --xfails known-gaps.txt
  python -m plugrad.conformance --backend numpy -k "softmax and gradient" -x
  python -m plugrad.conformance --kernel-table    # the kernel signatures, as Markdown

The exit code is pytest's: 0 when every check passed, 1 when some failed, 4 on bad options;
2 when pytest is missing (pip install 'plugrad[conformance]').
"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m plugrad.conformance",
        description="Check that a plugrad backend plugin conforms: every op against a float64 "
                    "NumPy reference, gradients against finite differences, fused kernels "
                    "against their decompositions, devices and dtypes.",
        epilog=_EPILOG, formatter_class=DescriptionFormatter)
    parser.add_argument("--backend", metavar="NAME",
                        help="entry-point name of the backend plugin (see 'plugrad info')")
    parser.add_argument("--device", metavar="DEV",
                        help="device to test on, e.g. cpu0 (default: the backend's first)")
    parser.add_argument("--xfails", metavar="FILE",
                        help="known gaps: test-id patterns with reasons (text, or TOML)")
    parser.add_argument("-k", dest="keyword", metavar="EXPR",
                        help="only run tests matching the expression (as pytest -k)")
    parser.add_argument("--plugin", metavar="MODULE", action="append", default=[],
                        help="register a plugin module by import path first (a backend under "
                             "development that is not installed yet); repeatable")
    parser.add_argument("--kernel-table", action="store_true",
                        help="print the kernel signatures of every op as Markdown and exit")
    return parser


def build_pytest_args(options: argparse.Namespace, extra: list[str]) -> list[str]:
    """The pytest command line for parsed options (public so tests and CI can show it)."""
    import plugrad.conformance

    # An empty config file and the suite's own folder as rootdir: the caller's pytest settings
    # do not apply, and test ids read tests/test_ops.py::test_forward[...] wherever plugrad is.
    rootdir = os.path.dirname(os.path.abspath(plugrad.conformance.__file__))
    args = ["-c", os.devnull, "--rootdir", rootdir, "-p", "no:cacheprovider",
            "-p", "plugrad.conformance.plugin",
            "--pyargs", "plugrad.conformance.tests", "-ra",
            "--plugrad-backend", options.backend]
    if options.device:
        args += ["--plugrad-device", options.device]
    if options.xfails:
        args += ["--plugrad-xfails", os.path.abspath(options.xfails)]
    for module in options.plugin:
        args += ["--plugrad-plugin", module]
    if options.keyword:
        args += ["-k", options.keyword]
    return args + extra


def _kernel_table() -> str:
    from plugrad.conformance.contract import markdown_table

    return (f"Required primitives:\n\n{markdown_table(primitive=True)}\n\n"
            f"Optional fused ops:\n\n{markdown_table(primitive=False)}")


def main(argv: list[str] | None = None) -> int:
    """Parse options, run pytest in this process, return its exit code."""
    options, extra = _parser().parse_known_args(sys.argv[1:] if argv is None else argv)
    if options.kernel_table:
        print(_kernel_table())
        return 0
    if not options.backend:
        _parser().error("--backend NAME is required (run 'plugrad info' to list backends)")
    try:
        import pytest
    except ModuleNotFoundError:
        # pytest runs the suite but is no dependency of plugrad itself: say how to get it.
        print("python -m plugrad.conformance: the suite runs on pytest, which is not installed; "
              "pip install 'plugrad[conformance]'", file=sys.stderr)
        return 2
    return int(pytest.main(build_pytest_args(options, extra)))
