"""NCCL collectives of CuPy arrays, through CuPy's bindings (``cupy.cuda.nccl``).

The ``gpu`` device type's ``collectives``. MPI is the bootstrap: rank 0 makes NCCL's unique id
and broadcasts it over the group's mpi4py communicator. NCCL refuses two ranks of one
communicator on one GPU ("Duplicate GPU detected"), so such a group gets ``None`` here and
plugrad.distributed moves its arrays through the host instead.
"""
from __future__ import annotations

import socket
import warnings
from typing import Any

__all__ = ["NCCLCommunicator", "nccl_communicator"]


def nccl_communicator(comm: Any, index: int) -> NCCLCommunicator | None:
    """A communicator over ``comm``'s ranks, or None where NCCL cannot serve them."""
    placements = comm.allgather((socket.gethostname(), index))
    if len(set(placements)) < len(placements):
        warnings.warn("plugrad.distributed: several ranks share one GPU, which NCCL does not "
                      "allow; their collectives go through the host (MPI) instead",
                      RuntimeWarning, stacklevel=2)
        return None
    try:
        from cupy.cuda import nccl  # noqa: F401
    except ImportError as exc:
        warnings.warn(f"plugrad.distributed: CuPy has no NCCL ({exc}); the GPU collectives go "
                      f"through the host (MPI) instead", RuntimeWarning, stacklevel=2)
        return None
    return NCCLCommunicator(comm, index)


class NCCLCommunicator:
    """all_reduce / broadcast / all_gather / reduce_scatter of CuPy arrays on one GPU per rank.

    Calls are queued on the current stream, like the kernels around them; each returns a new
    array.
    """

    def __init__(self, comm: Any, index: int):
        import cupy
        from cupy.cuda import nccl

        self._cupy = cupy
        self._nccl = nccl
        self._mpi = comm
        self.size = comm.Get_size()
        with cupy.cuda.Device(index):
            unique_id = nccl.get_unique_id() if comm.Get_rank() == 0 else None
            unique_id = comm.bcast(unique_id, root=0)
            self._comm = nccl.NcclCommunicator(self.size, unique_id, comm.Get_rank())
        self._ops = {"sum": nccl.NCCL_SUM, "max": nccl.NCCL_MAX, "min": nccl.NCCL_MIN}
        self._dtypes = {"float16": nccl.NCCL_FLOAT16, "float32": nccl.NCCL_FLOAT32,
                        "float64": nccl.NCCL_FLOAT64, "int32": nccl.NCCL_INT32,
                        "int8": nccl.NCCL_INT8, "uint8": nccl.NCCL_UINT8}

    def _dtype(self, x: Any) -> int:
        found = self._dtypes.get(x.dtype.name)
        if found is None:
            raise TypeError(f"NCCL collectives: dtype {x.dtype.name} is not supported; "
                            f"supported: {', '.join(self._dtypes)}; cast with astype first")
        return found

    def _stream(self) -> int:
        return self._cupy.cuda.get_current_stream().ptr

    def all_reduce(self, x: Any, op: str) -> Any:
        x = self._cupy.ascontiguousarray(x)
        out = self._cupy.empty_like(x)
        self._comm.allReduce(x.data.ptr, out.data.ptr, x.size, self._dtype(x), self._ops[op],
                             self._stream())
        return out

    def broadcast(self, x: Any, root: int) -> Any:
        out = self._cupy.array(x, copy=True, order="C")
        self._comm.broadcast(out.data.ptr, out.data.ptr, out.size, self._dtype(out), root,
                             self._stream())
        return out

    def all_gather(self, x: Any) -> Any:
        x = self._cupy.ascontiguousarray(x)
        out = self._cupy.empty((self.size * x.shape[0],) + x.shape[1:], dtype=x.dtype)
        self._comm.allGather(x.data.ptr, out.data.ptr, x.size, self._dtype(x), self._stream())
        return out

    def reduce_scatter(self, x: Any) -> Any:
        x = self._cupy.ascontiguousarray(x)
        out = self._cupy.empty((x.shape[0] // self.size,) + x.shape[1:], dtype=x.dtype)
        self._comm.reduceScatter(x.data.ptr, out.data.ptr, out.size, self._dtype(x),
                                 self._ops["sum"], self._stream())
        return out

    def barrier(self) -> None:
        self._cupy.cuda.get_current_stream().synchronize()
        self._mpi.Barrier()
