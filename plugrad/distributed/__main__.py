"""``python -m plugrad.distributed -n N script.py [args]``: ``mpiexec -n N python script.py``
with failures named by rank.

Under plain ``mpiexec`` a killed rank is reported by its pid only (MPICH kills the others
before they can say anything); this runner maps it back to the rank, and exits with status 1.
"""
from __future__ import annotations

import argparse
import sys

from plugrad.distributed.data_parallel import start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m plugrad.distributed",
                                     description="Run a Python script as N MPI ranks.")
    parser.add_argument("-n", "--nproc", type=int, required=True, help="number of ranks")
    parser.add_argument("script", help="the Python script each rank runs")
    parser.add_argument("args", nargs=argparse.REMAINDER, help="the script's arguments")
    parsed = parser.parse_args(argv)
    return start([parsed.script, *parsed.args], parsed.nproc)


if __name__ == "__main__":
    sys.exit(main())
