"""Data-parallel training for ready-made jobs (``plugrad train --nproc N``).

The job's code stays a single-process loop: :func:`start` runs it as N MPI ranks,
and inside each rank :func:`setup` gives every rank rank 0's initial weights and the gradient
all-reduce callback; the samplers split each epoch by rank on their own.
"""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Any

from plugrad.distributed.group import get_rank, is_distributed
from plugrad.distributed.helper import bcast_list_, make_allreduce_cb
from plugrad.distributed.launcher import RankFailed, run_mpiexec

__all__ = ["start", "setup"]


def start(python_args: list[str], nproc: int) -> int:
    """Run ``python <python_args>`` as ``nproc`` ranks; returns the exit status.

    A rank that raises or dies stops the others; the message names it.
    """
    with tempfile.TemporaryDirectory(prefix="plugrad-nproc-") as folder:
        try:
            run_mpiexec(nproc, python_args, Path(folder))
        except RankFailed as exc:
            print(f"plugrad: {exc}", file=sys.stderr)
            return 1
    return 0


def setup(model: Any) -> tuple[list[Any], bool]:
    """(GradManager callbacks, whether this process reports and saves) for a training loop.

    In a process group: rank 0's weights everywhere, gradients averaged over the ranks, and
    only rank 0 reports. Outside one: no callbacks, and the process reports.
    """
    if not is_distributed():
        return [], True
    bcast_list_(model.parameters())
    return [make_allreduce_cb("mean")], get_rank() == 0
