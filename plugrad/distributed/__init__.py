"""MegEngine's ``megengine.distributed`` over MPI (CPU) and NCCL (GPU).

    import plugrad.distributed as dist

    @dist.launcher(n_gpus=2)          # or: mpiexec -n 2 python train.py
    def main():
        model = LeNet()
        dist.bcast_list_(model.parameters())
        gm = GradManager().attach(model.parameters(), callbacks=[dist.make_allreduce_cb("mean")])
        ...

    results = main()                   # each rank's return value, in rank order

Importing this package needs nothing beyond plugrad; the first call that needs MPI says what
to install if mpi4py is missing (``pip install 'plugrad[mpi]'``). docs/distributed.md has the
whole story: transports, failure handling, the plugin contract's ``collectives``.
"""
from __future__ import annotations

from plugrad.distributed import functional
from plugrad.distributed.group import (WORLD, Group, get_backend, get_rank, get_world_size,
                                       group_barrier, init_process_group, is_distributed,
                                       new_group)
from plugrad.distributed.helper import AllreduceCallback, bcast_list_, make_allreduce_cb
from plugrad.distributed.launcher import launcher

__all__ = ["functional", "WORLD", "Group", "get_backend", "get_rank", "get_world_size",
           "group_barrier", "init_process_group", "is_distributed", "new_group",
           "AllreduceCallback", "bcast_list_", "make_allreduce_cb", "launcher"]
