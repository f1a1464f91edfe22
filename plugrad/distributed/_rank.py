"""The first code of every rank that the launcher or ``python -m plugrad.distributed`` starts.

Run as a script (``python .../_rank.py -m module args`` or ``python .../_rank.py script.py
args``), so that nothing can fail before it notes this rank's pid in the run folder: the
launcher watches those pids and stops the job when one goes without finishing, whatever the
phase (an import error, a crash before MPI starts, ``os._exit``). An exception is noted with
its traceback and stops every rank. Standard library only: it runs before plugrad is imported.
"""
from __future__ import annotations

import os
import runpy
import sys
import time
import traceback
from pathlib import Path

#: Set in every process the launcher starts: the run folder, where ranks leave their notes.
RUN_DIR_VARIABLE = "PLUGRAD_LAUNCHED_RANK"

# Variables the MPI process managers set to each process's rank before it starts.
_RANK_VARIABLES = ("PMI_RANK", "OMPI_COMM_WORLD_RANK", "PMIX_RANK")
#: Seconds between a failing rank's message on stderr and ``MPI_Abort``. On an abort the
#: process manager stops forwarding the ranks' output, and a message still on its way is lost:
#: MPICH's mpiexec returned an empty stderr in one of about ten runs of the test suite.
ABORT_GRACE_S = 0.2


def run_dir() -> Path | None:
    folder = os.environ.get(RUN_DIR_VARIABLE)
    return Path(folder) if folder else None


def rank_from_environment() -> int | None:
    """This process's rank as the process manager announced it (before MPI starts)."""
    for name in _RANK_VARIABLES:
        value = os.environ.get(name)
        if value:
            return int(value)
    return None


def write_atomically(path: Path, data: bytes) -> None:
    partial = path.with_suffix(".partial")
    partial.write_bytes(data)
    partial.rename(path)


def note(kind: str, rank: int | None, text: str = "") -> None:
    """Leave ``<kind><rank>`` (``pid``, ``done``, ``error``, ``timeout``) in the run folder."""
    folder = run_dir()
    if folder is not None and rank is not None:
        write_atomically(folder / f"{kind}{rank}", text.encode())


def stop_every_rank(rank: int | None, kind: str, headline: str, text: str) -> None:
    """Note why this rank fails, say it on stderr, and end the job: ``MPI_Abort`` once MPI
    runs (the process manager stops the others), else exit 1 (the launcher sees it)."""
    note(kind, rank, text)
    if run_dir() is None:  # else the launcher's error tells it
        sys.stderr.write(f"plugrad.distributed: rank {rank} {headline}; aborting all "
                         f"ranks\n{text}")
        sys.stderr.flush()
    sys.stdout.flush()
    mpi = sys.modules.get("mpi4py.MPI")
    if mpi is not None and mpi.Is_initialized() and not mpi.Is_finalized():
        time.sleep(ABORT_GRACE_S)  # the message reaches the process manager before the abort
        mpi.COMM_WORLD.Abort(1)
    os._exit(1)


def main(argv: list[str]) -> None:
    rank = rank_from_environment()  # None: an MPI without the usual variables, no notes
    note("pid", rank, str(os.getpid()))
    try:
        if argv[0] == "-m":
            sys.argv = argv[1:]
            runpy.run_module(argv[1], run_name="__main__", alter_sys=True)
        else:
            sys.argv = argv
            sys.path.insert(0, os.path.dirname(os.path.abspath(argv[0])))
            runpy.run_path(argv[0], run_name="__main__")
    except SystemExit as exc:
        if exc.code not in (None, 0):
            stop_every_rank(rank, "error", "exited early", f"sys.exit({exc.code!r})\n")
    except BaseException:
        stop_every_rank(rank, "error", "raised an exception", traceback.format_exc())
    note("done", rank)


if __name__ == "__main__":
    sys.path.pop(0)  # this folder is not an import root: its modules belong to the package
    main(sys.argv[1:])
