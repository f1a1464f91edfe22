"""MegEngine's ``launcher``: run a function on N processes, return each rank's result.

The processes are MPI ranks started by ``mpiexec`` (the one next to the running Python first,
as the ``mpich`` wheel installs it), so the rendezvous and the cleanup are MPI's: when a rank
raises or dies, the MPI process manager kills the others at once, and the launcher raises an
error naming the rank (with its traceback when it raised). Like ``multiprocessing``'s spawn,
the function must be importable: defined at the top level of a module or of the main script,
whose launching call is guarded by ``if __name__ == "__main__":``.
"""
from __future__ import annotations

import os
import pickle
import re
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path
from typing import Any, Callable

from plugrad.distributed.mpi import INSTALL_HINT

__all__ = ["launcher", "find_mpiexec", "run_mpiexec", "RankFailed", "note_rank_started",
           "note_rank_failed"]

#: Set in every process the launcher starts, so a stray top-level call does not recurse.
WORKER_VARIABLE = "PLUGRAD_LAUNCHED_RANK"


class RankFailed(RuntimeError):
    """A rank of a launched job raised or died; ``rank`` says which."""

    def __init__(self, message: str, rank: int | None):
        super().__init__(message)
        self.rank = rank


def _run_dir() -> Path | None:
    folder = os.environ.get(WORKER_VARIABLE)
    return Path(folder) if folder else None


def write_atomically(path: Path, data: bytes) -> None:
    partial = path.with_suffix(".partial")
    partial.write_bytes(data)
    partial.rename(path)


def note_rank_started(rank: int) -> None:
    """In a launched rank, leave its pid, so a death the MPI process manager reports by pid
    is named by rank."""
    run_dir = _run_dir()
    if run_dir is not None:
        write_atomically(run_dir / f"pid{rank}", str(os.getpid()).encode())


def note_rank_failed(rank: int, text: str) -> None:
    """In a launched rank, leave the traceback for the launcher's error."""
    run_dir = _run_dir()
    if run_dir is not None:
        write_atomically(run_dir / f"error{rank}.txt", text.encode())


def find_mpiexec() -> str:
    """The ``mpiexec`` to use: ``$PLUGRAD_MPIEXEC``, the one pip installed for this Python (the
    mpich wheel's, matching mpi4py's library), or PATH's."""
    chosen = os.environ.get("PLUGRAD_MPIEXEC")
    if chosen:
        return chosen
    folders = [Path(sys.executable).parent, Path(sysconfig.get_path("scripts")),
               Path(sysconfig.get_path("scripts", f"{os.name}_user"))]
    for folder in folders:
        if (folder / "mpiexec").exists():
            return str(folder / "mpiexec")
    found = shutil.which("mpiexec")
    if found is None:
        raise RuntimeError(f"plugrad.distributed: no mpiexec found beside {sys.executable} or "
                           f"on PATH; {INSTALL_HINT}, or set PLUGRAD_MPIEXEC")
    return found


class _ReportFilter:
    """Passes the ranks' output on, keeping back the banner MPICH's process manager prints when
    a rank dies (its pid and exit status go into the launcher's error instead)."""

    def __init__(self) -> None:
        self.report: list[str] = []
        self._held: list[str] = []
        self._inside = False

    def feed(self, line: str) -> str:
        """The text to print now for ``line``."""
        if self._inside:
            self.report.append(line)
            self._inside = not line.startswith("Please see the FAQ")
            return ""
        if line.startswith("====="):  # maybe the banner's first line: wait for the next
            self._held.append(line)
            return ""
        if "BAD TERMINATION" in line:
            self.report += self._held + [line]
            self._held, self._inside = [], True
            return ""
        out = "".join(self._held) + line
        self._held = []
        return out


def _how_it_ended(report: str, code: int) -> str:
    killed = re.search(r"\(signal (\d+)\)", report)
    if killed:
        number = int(killed.group(1))
        try:
            return f"killed by signal {number} ({signal.Signals(number).name})"
        except ValueError:
            return f"killed by signal {number}"
    exit_code = re.search(r"EXIT CODE: (\d+)", report)
    return f"exit code {exit_code.group(1) if exit_code else code}"


def run_mpiexec(nproc: int, command: list[str], run_dir: Path,
                env: dict[str, str] | None = None) -> None:
    """Run ``command`` as ``nproc`` MPI ranks; raise :class:`RankFailed` naming a failed rank.

    Each rank writes ``pid<rank>`` into ``run_dir`` when it starts and ``error<rank>.txt``
    when it raises; the process manager's report of a dead process is mapped back to its rank.
    """
    if not isinstance(nproc, int) or nproc < 1:
        raise ValueError(f"launcher: the number of processes must be a positive integer; "
                         f"got {nproc!r}")
    env = dict(os.environ if env is None else env)
    env[WORKER_VARIABLE] = str(run_dir)
    # One machine's cores shared by the ranks: no rank starts more kernel threads than its share.
    env.setdefault("PLUGRAD_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // nproc)))
    process = subprocess.Popen([find_mpiexec(), "-n", str(nproc), *command], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               bufsize=1)
    output = _ReportFilter()
    try:
        for line in process.stdout:  # the ranks' output, passed on as it comes
            shown = output.feed(line)
            if shown:
                sys.stdout.write(shown)
                sys.stdout.flush()
        code = process.wait()
    except BaseException:  # Ctrl-C: the process manager stops every rank
        process.terminate()
        process.wait()
        raise
    if code != 0:
        raise _failure(nproc, run_dir, "".join(output.report), code)


def _failure(nproc: int, run_dir: Path, report: str, code: int) -> RankFailed:
    for rank in range(nproc):
        error = run_dir / f"error{rank}.txt"
        if error.exists():
            return RankFailed(f"launcher: rank {rank} of {nproc} raised; the other ranks were "
                              f"stopped. Its traceback:\n{error.read_text()}", rank)
    pids = {}
    for rank in range(nproc):
        path = run_dir / f"pid{rank}"
        if path.exists():
            pids[int(path.read_text())] = rank
    match = re.search(r"PID (\d+) RUNNING", report)
    if match and int(match.group(1)) in pids:
        rank = pids[int(match.group(1))]
        return RankFailed(f"launcher: rank {rank} of {nproc} died "
                          f"({_how_it_ended(report, code)}); the other ranks were stopped", rank)
    return RankFailed(f"launcher: mpiexec exited with code {code} before the ranks finished "
                      f"(no rank reported an error); its report:\n{report}", None)


def _reference(func: Callable) -> dict[str, Any]:
    """How a worker finds ``func``: its module (or the main script's path) and its name."""
    qualname = getattr(func, "__qualname__", None)
    module = getattr(func, "__module__", None)
    if qualname is None or module is None or "<" in qualname:
        raise TypeError(f"launcher: the function must be defined at the top level of a module "
                        f"or script (the ranks import it by name); got {func!r}")
    main_path = None
    if module == "__main__":
        main = sys.modules["__main__"]
        spec = getattr(main, "__spec__", None)
        if spec is not None and spec.name:  # run with python -m
            module = spec.name
        elif getattr(main, "__file__", None):
            main_path = os.path.abspath(main.__file__)
        else:
            raise TypeError("launcher: cannot launch a function defined interactively; put it "
                            "in a module or script")
    return {"module": module, "qualname": qualname, "main_path": main_path}


class launcher:  # noqa: N801  (MegEngine's name)
    """Run a function on ``n_gpus`` processes; calling it returns each rank's result in rank
    order. A decorator (``@launcher``, ``@launcher(n_gpus=2)``) or a call
    (``launcher(func, n_gpus=2)(*args)``).

    Args:
        n_gpus: processes on this machine; on a machine without GPUs they are CPU processes.
            Default: the number of GPUs, else the number of CPU cores.
        world_size: the total number of processes; only this machine's (``n_gpus``) is
            supported; for several machines, run ``mpiexec -hosts ... -n N python train.py``.
        device_type: the device each rank uses (``"xpu"``, ``"gpu"``, ``"cpu"``).
        backend: ``"nccl"`` or None (the device type's own collectives), ``"mpi"`` (the host).
        rank_start, master_ip, port: accepted for MegEngine compatibility; MPI does the
            rendezvous.

    Example:
        >>> @launcher(n_gpus=2)
        ... def worker():
        ...     return get_rank()
        >>> worker()
        [0, 1]
    """

    def __init__(self, func: Callable | None = None, n_gpus: int | None = None,
                 world_size: int | None = None, rank_start: int = 0,
                 master_ip: str = "localhost", port: int = 0, device_type: str = "xpu",
                 backend: str | None = None):
        if func is not None and not callable(func):
            raise TypeError(f"launcher: expected a function; got {type(func).__name__}")
        if n_gpus is None:
            from plugrad.core.device import get_device_count

            n_gpus = get_device_count("gpu") or os.cpu_count() or 1
        if world_size is not None and world_size != n_gpus:
            raise NotImplementedError(
                f"launcher: world_size={world_size} spans several machines; the launcher starts "
                f"this machine's {n_gpus} processes only. Start every machine's processes with "
                f"one command: mpiexec -hosts host1,host2 -n {world_size} python train.py")
        self.func = func
        self.n_gpus = n_gpus
        self.device_type = device_type
        self.backend = backend

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self.func is None:  # @launcher(n_gpus=2) receiving its function
            self.func = args[0]
            return self
        if os.environ.get(WORKER_VARIABLE):
            raise RuntimeError("launcher: called inside a launched rank (the main script runs "
                               "again in each rank); guard the launching call with "
                               "if __name__ == '__main__':")
        # The parent's import path goes along, as with multiprocessing's spawn.
        task = {"target": _reference(self.func), "sys_path": list(sys.path),
                "device_type": self.device_type, "backend": self.backend}
        with tempfile.TemporaryDirectory(prefix="plugrad-launch-") as folder:
            run_dir = Path(folder)
            (run_dir / "task.pkl").write_bytes(pickle.dumps(task))
            (run_dir / "args.pkl").write_bytes(pickle.dumps((args, kwargs)))
            run_mpiexec(self.n_gpus, [sys.executable, "-m", "plugrad.distributed._worker",
                                      str(run_dir)], run_dir)
            return [pickle.loads((run_dir / f"result{rank}.pkl").read_bytes())
                    for rank in range(self.n_gpus)]
