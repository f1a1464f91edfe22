"""A module whose import fails on rank 1 only (the launcher's parent imports it too)."""
from __future__ import annotations

import os

if os.environ.get("PMI_RANK") == "1":  # set by MPICH's process manager before the rank starts
    raise ImportError("this module is broken on rank 1 on purpose")


def work() -> int:
    import plugrad.distributed as dist

    return dist.get_rank()
