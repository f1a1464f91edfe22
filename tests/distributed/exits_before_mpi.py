"""Run by 'python -m plugrad.distributed -n 2': rank 1 exits with status 3 before MPI starts;
rank 0 would wait in MPI_Init for ever if nobody noticed."""
import os

if os.environ.get("PMI_RANK") == "1":
    os._exit(3)

import plugrad.distributed as dist  # noqa: E402

dist.group_barrier()
