"""``plugrad`` console script and ``python -m plugrad``."""
from __future__ import annotations

import argparse
import sys

COMMANDS = {
    "info": "versions, backends (loaded or failed, with the reason), devices, op coverage",
    "train": "train LeNet on MNIST (the quick-start job); see 'plugrad train --help'",
    "export": "write a trained LeNet checkpoint as an ONNX model; see 'plugrad export --help'",
}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="plugrad", description="plugrad command-line tools")
    parser.add_argument("command", choices=sorted(COMMANDS),
                        help="; ".join(f"{k}: {v}" for k, v in COMMANDS.items()))
    parser.add_argument("args", nargs=argparse.REMAINDER)
    parsed = parser.parse_args(argv[:1])
    if parsed.command == "info":
        from plugrad.cli.info import main as run
    elif parsed.command == "export":
        from plugrad.cli.export import main as run
    else:
        from plugrad.cli.train import main as run
    return run(argv[1:])


if __name__ == "__main__":
    sys.exit(main())
