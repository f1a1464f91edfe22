"""MegEngine's ``launcher``: run a function on N processes, return each rank's result.

The processes are MPI ranks started by ``mpiexec`` (the one next to the running Python first,
as the ``mpich`` wheel installs it), so the rendezvous is MPI's. When a rank raises or dies,
in any phase (importing the function's module, starting MPI, a collective), the job stops
within a second or so and the launcher raises an error naming the rank, with its traceback or
its exit status: the MPI process manager stops the others once MPI runs, and the launcher
watches each rank's pid for what happens before. Like ``multiprocessing``'s spawn,
the function must be importable: defined at the top level of a module or of the main script,
whose launching call is guarded by ``if __name__ == "__main__":``.
"""
from __future__ import annotations

import functools
import os
import pickle
import re
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable

from plugrad.distributed import _rank
from plugrad.distributed._rank import RUN_DIR_VARIABLE
from plugrad.distributed.mpi import INSTALL_HINT

__all__ = ["launcher", "find_mpiexec", "run_mpiexec", "RankFailed"]

#: Seconds a rank may take to start (until its first line of Python runs).
STARTUP_SECONDS = 120.0
#: How often the launcher looks for a rank that has gone.
_POLL_SECONDS = 0.2


class RankFailed(RuntimeError):
    """A rank of a launched job raised or died; ``rank`` says which."""

    def __init__(self, message: str, rank: int | None):
        super().__init__(message)
        self.rank = rank


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
        if _EXIT_CODES.match(line):  # -print-all-exitcodes: every rank's wait status
            self.report.append(line)
            return ""
        out = "".join(self._held) + line
        self._held = []
        return out


_EXIT_CODES = re.compile(r"\[mpiexec@[^\]]*\] Exit codes: (.*)")


def _statuses(report: str) -> dict[int, int]:
    """Each rank's wait status from hydra's ``Exit codes: [host] 0,768`` line (one host: the
    ranks in order); empty when there is none or several hosts."""
    match = re.search(_EXIT_CODES.pattern, report)
    hosts = re.findall(r"\[[^\]]*\] ([\d,]+)", match.group(1)) if match else []
    if len(hosts) != 1:
        return {}
    return dict(enumerate(int(value) for value in hosts[0].split(",")))


def _describe(status: int | None) -> str:
    """How a process ended, from its wait status."""
    if status is None:
        return "exit status unknown"
    number = status & 0x7F
    if not number:
        return f"exit code {status >> 8}"
    try:
        return f"killed by signal {number} ({signal.Signals(number).name})"
    except ValueError:
        return f"killed by signal {number}"


def _gone(pid: int) -> bool:
    """Whether process ``pid`` has ended (a zombie not yet reaped counts as ended)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[-1].startswith("Z")
    except OSError:  # no /proc (not Linux), or it ended just now: the next poll sees it
        return False


class _Watch(threading.Thread):
    """Stops the job when a rank's process has gone without finishing or never started.

    MPICH's process manager does that on its own only for ranks that have started MPI; a rank
    that dies before (an import error, a crash, ``os._exit``) would leave the others waiting
    in ``MPI_Init`` for ever.
    """

    def __init__(self, nproc: int, run_dir: Path, process: subprocess.Popen):
        super().__init__(daemon=True, name="plugrad-launcher-watch")
        self.nproc, self.run_dir, self.process = nproc, run_dir, process
        self.dead: list[int] = []
        self.not_started: list[int] = []
        self.finished = threading.Event()

    def run(self) -> None:
        deadline = time.monotonic() + STARTUP_SECONDS
        pids: dict[int, int] = {}
        while not self.finished.wait(_POLL_SECONDS):
            for rank in range(self.nproc):
                if rank not in pids and (self.run_dir / f"pid{rank}").exists():
                    pids[rank] = int((self.run_dir / f"pid{rank}").read_text())
            self.dead = [rank for rank, pid in pids.items()
                         if _gone(pid) and not (self.run_dir / f"done{rank}").exists()]
            # Ranks note their pids only where the process manager names them (PMI_RANK...).
            if pids and len(pids) < self.nproc and time.monotonic() > deadline:
                self.not_started = sorted(set(range(self.nproc)) - set(pids))
            if self.dead or self.not_started:
                self.process.terminate()  # hydra stops the rest and prints their statuses
                return


@functools.cache
def _is_hydra(mpiexec: str) -> bool:
    """Whether ``mpiexec`` is MPICH's hydra (which can print every rank's exit status)."""
    try:
        found = subprocess.run([mpiexec, "--version"], capture_output=True, text=True,
                               timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return "HYDRA" in found.stdout


def run_mpiexec(nproc: int, python_args: list[str], run_dir: Path,
                env: dict[str, str] | None = None) -> None:
    """Run ``python <python_args>`` as ``nproc`` MPI ranks; raise :class:`RankFailed` naming
    a failed rank.

    Each rank starts in :mod:`plugrad.distributed._rank`, which leaves notes in ``run_dir``
    (its pid, its traceback if it raises, that it finished); a rank whose process goes without
    finishing stops the job, and the process manager's statuses name how it ended.
    """
    if not isinstance(nproc, int) or nproc < 1:
        raise ValueError(f"launcher: the number of processes must be a positive integer; "
                         f"got {nproc!r}")
    env = dict(os.environ if env is None else env)
    env[RUN_DIR_VARIABLE] = str(run_dir)
    # One machine's cores shared by the ranks: no rank starts more kernel threads than its share.
    env.setdefault("PLUGRAD_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // nproc)))
    mpiexec = find_mpiexec()
    options = ["-print-all-exitcodes"] if _is_hydra(mpiexec) else []
    process = subprocess.Popen([mpiexec, *options, "-n", str(nproc), sys.executable,
                                _rank.__file__, *python_args], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               bufsize=1)
    watch = _Watch(nproc, run_dir, process)
    watch.start()
    output = _ReportFilter()
    assert process.stdout is not None  # stdout=PIPE
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
    finally:
        watch.finished.set()
        watch.join()
    if code != 0 or watch.dead or watch.not_started:
        raise _failure(nproc, run_dir, "".join(output.report), code, watch)


def _noted(run_dir: Path, kind: str, nproc: int) -> dict[int, str]:
    return {rank: (run_dir / f"{kind}{rank}").read_text() for rank in range(nproc)
            if (run_dir / f"{kind}{rank}").exists()}


def _failure(nproc: int, run_dir: Path, report: str, code: int, watch: _Watch) -> RankFailed:
    """The error naming the rank that failed first, from the ranks' notes and the report."""
    errors = _noted(run_dir, "error", nproc)
    if errors:
        rank = min(errors)
        return RankFailed(f"launcher: rank {rank} of {nproc} raised; the other ranks were "
                          f"stopped. Its traceback:\n{errors[rank]}", rank)
    timeouts = _noted(run_dir, "timeout", nproc)
    if timeouts:
        missing = [rank for rank in range(nproc) if rank not in timeouts]
        reporter = min(timeouts)
        return RankFailed(f"launcher: rank(s) {missing} of {nproc} never arrived at a "
                          f"collective; the others gave up waiting and the job was stopped. "
                          f"Rank {reporter}'s report:\n{timeouts[reporter]}",
                          missing[0] if missing else reporter)
    statuses = _statuses(report)
    stopped = _stopped_for_another(statuses)
    pids = {int(pid): rank for rank, pid in _noted(run_dir, "pid", nproc).items()}
    banner = re.search(r"PID (\d+) RUNNING", report)
    first = pids.get(int(banner.group(1))) if banner else None
    if first in stopped:
        first = None
    dead = [rank for rank in watch.dead if rank not in stopped]
    candidates = [r for r in dead if statuses.get(r)] or dead
    if first is None or (candidates and first not in candidates):
        first = min(candidates) if candidates else None
    if first is None:  # no notes (an MPI without rank variables): the statuses alone
        failed = [rank for rank, status in statuses.items() if status and rank not in stopped]
        first = failed[0] if len(failed) == 1 else None
    if first is not None:
        status = statuses.get(first)
        if status is None and banner:
            status = _status_in_banner(report)
        return RankFailed(f"launcher: rank {first} of {nproc} died ({_describe(status)}); "
                          f"the other ranks were stopped", first)
    if watch.not_started:
        return RankFailed(f"launcher: rank(s) {watch.not_started} of {nproc} did not start "
                          f"within {STARTUP_SECONDS:g} s; the job was stopped",
                          watch.not_started[0])
    return RankFailed(f"launcher: mpiexec exited with code {code} before the ranks finished "
                      f"(no rank reported an error); its report:\n{report}", None)


#: Signals the process manager stops the other ranks with once one has failed.
_STOPPING_SIGNALS = (signal.SIGKILL, signal.SIGTERM)


def _stopped_for_another(statuses: dict[int, int]) -> set[int]:
    """The ranks the process manager killed (SIGKILL, SIGTERM) while another rank failed on its
    own (an exit code, another signal): they did not cause the failure. Under load hydra can
    kill a slow rank before its notes show it finished, so it looks dead too."""
    killed = {rank for rank, status in statuses.items() if status & 0x7F in _STOPPING_SIGNALS}
    failed_on_own = [rank for rank, status in statuses.items() if status and rank not in killed]
    return killed if failed_on_own else set()


def _status_in_banner(report: str) -> int | None:
    """The wait status in MPICH's banner (``EXIT CODE: 9`` with ``(signal 9)``)."""
    killed = re.search(r"\(signal (\d+)\)", report)
    if killed:
        return int(killed.group(1))
    exit_code = re.search(r"EXIT CODE: (\d+)", report)
    return int(exit_code.group(1)) << 8 if exit_code else None


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
        main_file = getattr(main, "__file__", None)
        if spec is not None and spec.name:  # run with python -m
            module = spec.name
        elif main_file:
            main_path = os.path.abspath(main_file)
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
        timeout: seconds a collective may wait for the other ranks before the job is stopped
            (see :func:`init_process_group`); default ``$PLUGRAD_COLLECTIVE_TIMEOUT`` or 600.

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
                 backend: str | None = None, timeout: float | None = None):
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
        self.timeout = timeout

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self.func is None:  # @launcher(n_gpus=2) receiving its function
            self.func = args[0]
            return self
        if os.environ.get(RUN_DIR_VARIABLE):
            raise RuntimeError("launcher: called inside a launched rank (the main script runs "
                               "again in each rank); guard the launching call with "
                               "if __name__ == '__main__':")
        # The parent's import path goes along, as with multiprocessing's spawn.
        task = {"target": _reference(self.func), "sys_path": list(sys.path),
                "device_type": self.device_type, "backend": self.backend,
                "timeout": self.timeout}
        with tempfile.TemporaryDirectory(prefix="plugrad-launch-") as folder:
            run_dir = Path(folder)
            (run_dir / "task.pkl").write_bytes(pickle.dumps(task))
            (run_dir / "args.pkl").write_bytes(pickle.dumps((args, kwargs)))
            run_mpiexec(self.n_gpus, ["-m", "plugrad.distributed._worker", str(run_dir)],
                        run_dir)
            return [pickle.loads((run_dir / f"result{rank}.pkl").read_bytes())
                    for rank in range(self.n_gpus)]
