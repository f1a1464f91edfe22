"""Process groups: who takes part, this process's rank, and one communicator per device.

MegEngine's ``init_process_group`` rendezvous (master_ip, port) is MPI's job here: the ranks
and the world size come from the MPI process manager (``mpiexec -n N`` or
:func:`plugrad.distributed.launcher`). A program started by ``mpiexec`` is initialised on first
use even if it never calls :func:`init_process_group`.
"""
from __future__ import annotations

import sys
import threading
import traceback
from typing import Any, Sequence

from plugrad.distributed._rank import stop_every_rank
from plugrad.distributed.mpi import (
    HostCommunicator,
    import_mpi,
    launched_by_mpi,
    set_collective_timeout,
    wait,
)

__all__ = ["Group", "WORLD", "init_process_group", "is_distributed", "get_rank",
           "get_world_size", "get_backend", "new_group", "group_barrier", "communicator"]


class _Server:
    """What :func:`init_process_group` sets up once per process."""

    def __init__(self, comm: Any, backend: str, device: str):
        self.comm = comm  # a duplicate of COMM_WORLD: user MPI traffic cannot interleave
        self.backend = backend
        self.device = device


_server: _Server | None = None
_lock = threading.Lock()
_communicators_lock = threading.Lock()


class Group:
    """A set of ranks that run collectives together (MegEngine's ``Group``).

    ``WORLD`` is every process; :func:`new_group` makes others.
    """

    def __init__(self, proc_ranks: Sequence[int] | None = None):
        self.proc_ranks = list(proc_ranks) if proc_ranks else []
        self._comm: Any = None
        self._communicators: dict[tuple[str, int], Any] = {}

    def _world(self) -> bool:
        return not self.proc_ranks

    @property
    def comm(self) -> Any:
        """The group's mpi4py communicator (initialising the process group if MPI started us)."""
        server = _require_server("collective")
        if self._world():
            return server.comm
        if self._comm is None:
            raise RuntimeError(f"group {self.proc_ranks}: this process (rank "
                               f"{server.comm.Get_rank()}) is not a member")
        return self._comm

    @property
    def rank(self) -> int:
        return self.comm.Get_rank()

    @property
    def size(self) -> int:
        return self.comm.Get_size()

    def __repr__(self) -> str:
        return "Group(WORLD)" if self._world() else f"Group({self.proc_ranks})"


WORLD = Group()


def _abort_on_uncaught(kind: type, value: BaseException, tb: Any) -> None:
    """An uncaught exception on one rank stops every rank, naming the one that raised."""
    stop_every_rank(import_mpi().COMM_WORLD.Get_rank(), "error", "raised an exception",
                    "".join(traceback.format_exception(kind, value, tb)))


def init_process_group(master_ip: str | None = None, port: int | None = None,
                       world_size: int | None = None, rank: int | None = None,
                       device: int | None = None, backend: str | None = None,
                       device_type: str = "xpu", timeout: float | None = None) -> None:
    """Join the process group MPI started, and pick this rank's device.

    Args:
        master_ip, port: accepted for MegEngine compatibility; MPI does the rendezvous.
        world_size, rank: checked against what MPI reports when given.
        device: device index for this rank; by default its rank among the processes of its
            machine, modulo the number of devices (so 2 ranks may share one GPU).
        backend: ``"nccl"``, ``"mpi"`` or None: the device type's own collectives, else the host.
        device_type: ``"xpu"``, ``"gpu"`` or ``"cpu"``; this rank's default device becomes
            ``f"{device_type}{device}"``.
        timeout: seconds a collective may wait for the other ranks; past it, the rank says
            which collective it waited in and aborts the job. Default:
            ``$PLUGRAD_COLLECTIVE_TIMEOUT``, else 600 (a plugrad extension to MegEngine's
            signature, like ``timeout`` in ``torch.distributed.init_process_group``).

    Example:
        >>> dist.init_process_group()          # under mpiexec -n 2 python train.py
        >>> dist.get_rank(), dist.get_world_size()
        (0, 2)
    """
    global _server
    from plugrad.core.device import get_device_count, set_default_device

    MPI = import_mpi()
    with _lock:
        if _server is not None:
            raise RuntimeError("init_process_group: already initialised in this process")
        world = MPI.COMM_WORLD
        for name, given, actual in (("world_size", world_size, world.Get_size()),
                                    ("rank", rank, world.Get_rank())):
            if given is not None and given != actual:
                raise ValueError(f"init_process_group: {name}={given} but MPI reports "
                                 f"{actual}; start the program with 'mpiexec -n "
                                 f"{world_size or world.Get_size()} python ...' or use "
                                 f"plugrad.distributed.launcher")
        set_collective_timeout(timeout)
        if device is None:
            local_rank = world.Split_type(MPI.COMM_TYPE_SHARED).Get_rank()
            device = local_rank % max(get_device_count(device_type), 1)
        name = f"{device_type}{device}"
        set_default_device(name)
        _server = _Server(world.Dup(), backend or "auto", name)
        if world.Get_size() > 1:
            sys.excepthook = _abort_on_uncaught


def _require_server(what: str) -> _Server:
    if _server is None and launched_by_mpi():
        init_process_group()
    if _server is None:
        raise RuntimeError(f"plugrad.distributed: {what} needs a process group; start the "
                           f"program with 'mpiexec -n N python ...' or "
                           f"plugrad.distributed.launcher, or call init_process_group()")
    return _server


def is_distributed() -> bool:
    """Whether this process belongs to a process group (started by mpiexec or the launcher)."""
    if _server is None and launched_by_mpi():
        init_process_group()
    return _server is not None


def get_rank() -> int:
    """This process's rank in WORLD; 0 outside a process group."""
    return WORLD.rank if is_distributed() else 0


def get_world_size() -> int:
    """The number of processes in WORLD; 1 outside a process group."""
    return WORLD.size if is_distributed() else 1


def get_backend() -> str:
    """The collective backend asked for at init: ``"nccl"``, ``"mpi"`` or ``"auto"``."""
    return _require_server("get_backend").backend


def new_group(proc_ranks: Sequence[int]) -> Group:
    """A group of some ranks; every rank calls it (with the same ranks), as in MegEngine."""
    server = _require_server("new_group")
    size = server.comm.Get_size()
    ranks = sorted(set(int(r) for r in proc_ranks))
    if not ranks or ranks[0] < 0 or ranks[-1] >= size:
        raise ValueError(f"new_group: ranks must be distinct integers in [0, {size}); "
                         f"got {list(proc_ranks)}")
    group = Group(ranks)
    comm = server.comm.Create(server.comm.Get_group().Incl(ranks))
    group._comm = None if comm == import_mpi().COMM_NULL else comm
    return group


def group_barrier(group: Group = WORLD) -> None:
    """Wait until every rank of ``group`` reaches this call."""
    wait(group.comm.Ibarrier(), "group_barrier", group.comm)


def communicator(group: Group, device: Any) -> Any:
    """The communicator for ``device``'s arrays in ``group``, made on first use.

    The device type's own collectives when it declares some (and the backend asked for allows
    them), else the host path (``to_host``, MPI, ``from_host``).
    """
    key = (device.type.name, device.index)
    found = group._communicators.get(key)
    if found is not None:
        return found
    backend = get_backend()
    with _communicators_lock:  # made once, even when two threads ask at the same time
        found = group._communicators.get(key)
        if found is not None:
            return found
        device_type = device.type
        factory = device_type.collectives
        if factory is not None and backend != "mpi":
            found = factory(group.comm, device.index)
        if found is None:
            found = HostCommunicator(group.comm, device.index, device_type.to_host,
                                     device_type.from_host)
        group._communicators[key] = found
    return found
