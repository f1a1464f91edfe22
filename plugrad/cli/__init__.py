"""Command-line interface: ``plugrad <command>`` and ``python -m plugrad <command>``.

Each subcommand is one module listed in :data:`SUBCOMMANDS`. A module defines ``HELP`` (one
line), ``add_arguments(parser)`` and ``run(args) -> int``, and keeps heavy imports inside
``run`` so ``plugrad --help`` stays fast. A bad argument raises :class:`UsageError`: the user
sees one line and exit status 2; ``--debug`` shows the traceback instead.
"""
from __future__ import annotations

import argparse
import importlib
import logging
import sys
import textwrap
from types import ModuleType

__all__ = ["SUBCOMMANDS", "DescriptionFormatter", "HelpFormatter", "UsageError", "build_parser",
           "main"]

#: command name -> module; adding a subcommand is one module and one line here.
SUBCOMMANDS: dict[str, str] = {
    "train": "plugrad.cli.train",
    "eval": "plugrad.cli.evaluate",
    "predict": "plugrad.cli.predict",
    "info": "plugrad.cli.info",
    "export": "plugrad.cli.export",
}


class UsageError(Exception):
    """A bad argument or option: what is wrong and what to do, in one line."""


class DescriptionFormatter(argparse.HelpFormatter):
    """A description or epilog as written: prose paragraphs refilled to the terminal's width,
    a paragraph with indented lines (example commands under a heading) kept line for line."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        refill = super()._fill_text
        paragraphs = textwrap.dedent(text).strip().split("\n\n")
        return "\n\n".join(
            "\n".join(indent + line for line in paragraph.splitlines())
            if any(line[:1].isspace() for line in paragraph.splitlines())
            else refill(paragraph, width, indent)
            for paragraph in paragraphs)


class HelpFormatter(DescriptionFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """Shows ``(default: X)`` where there is a default worth showing; a command's description
    (its module docstring) as :class:`DescriptionFormatter` lays it out."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default is None or action.default is False or action.default is argparse.SUPPRESS:
            return action.help
        return super()._get_help_string(action)


def _version() -> str:
    import plugrad

    return f"plugrad {plugrad.__version__}"


def build_parser() -> argparse.ArgumentParser:
    """The ``plugrad`` parser with one subparser per entry of :data:`SUBCOMMANDS`."""
    parser = argparse.ArgumentParser(prog="plugrad", description="plugrad command-line tools",
                                     formatter_class=HelpFormatter)
    parser.add_argument("--version", action="version", version=_version())
    parser.add_argument("--debug", action="store_true",
                        help="show tracebacks and debug messages")
    # Accepted after the subcommand too; SUPPRESS keeps it from resetting the global flag.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                        help="show tracebacks and debug messages")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, module_name in SUBCOMMANDS.items():
        module: ModuleType = importlib.import_module(module_name)
        sub = commands.add_parser(name, help=module.HELP, description=module.__doc__,
                                  parents=[common], formatter_class=HelpFormatter,
                                  allow_abbrev=False)
        module.add_arguments(sub)
        sub.set_defaults(run=module.run)
    return parser


def _configure_logging(debug: bool) -> None:
    """plugrad's library messages (``logging.getLogger("plugrad...")``) go to stderr."""
    logger = logging.getLogger("plugrad")
    handler = next((h for h in logger.handlers if h.get_name() == "plugrad.cli"), None)
    if handler is None:  # one handler however often main() runs in a process
        handler = logging.StreamHandler(sys.stderr)
        handler.set_name("plugrad.cli")
        logger.addHandler(handler)
    handler.setFormatter(logging.Formatter("plugrad: %(levelname)s: %(message)s" if debug
                                           else "plugrad: %(message)s"))
    logger.setLevel(logging.DEBUG if debug else logging.INFO)


def main(argv: list[str] | None = None) -> int:
    """Run one command; returns the exit status (2 for a bad argument, 130 for Ctrl-C)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    args.argv = argv
    _configure_logging(args.debug)
    prog = f"plugrad {args.command}"
    try:
        return int(args.run(args) or 0)
    except UsageError as exc:
        if args.debug:
            raise
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        if args.debug:
            raise
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001  (one line for the user; --debug has the rest)
        if args.debug:
            raise
        print(f"{prog}: error: {type(exc).__name__}: {exc} (run with --debug for the traceback)",
              file=sys.stderr)
        return 1
