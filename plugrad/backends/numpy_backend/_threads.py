"""A small pool that runs parts of one kernel call on other threads (NumPy's loops and BLAS
release the GIL, so two threads computing halves of a batch run on two cores).

The caller always works too, and claims any part no worker has started: a worker that is slow
to wake (a busy machine, a descheduled virtual CPU) costs at most the part it already took,
never a wait for work nobody began. With a single thread, or while another call holds the
pool (a second Python thread running ops), parts simply run on the caller.

``PLUGRAD_NUM_THREADS`` sets the thread count (the caller included); by default the CPUs this
process may run on, at most 2 (beyond that the kernels' Python between NumPy calls, under the
GIL, limits the gain). 1 turns the pool off.
"""
from __future__ import annotations

import itertools
import os
import queue
import threading
from typing import Callable

__all__ = ["num_threads", "run_parts", "bounds"]

_MAX_DEFAULT_THREADS = 2


def _default_threads() -> int:
    try:
        value = int(os.environ.get("PLUGRAD_NUM_THREADS", "0"))
    except ValueError:
        value = 0
    if value > 0:
        return value
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    return max(1, min(cpus, _MAX_DEFAULT_THREADS))


class _Pool:
    """Worker threads fed through C-level queues (``queue.SimpleQueue``).

    A worker's last Python step before sleeping again is one ``put``: nothing it runs after
    waking the caller holds the GIL long enough to make the caller wait for it (a GIL handoff
    between two cores of a virtual machine costs tens of microseconds).
    """

    def __init__(self, workers: int):
        self._jobs: list[queue.SimpleQueue] = [queue.SimpleQueue() for _ in range(workers)]
        self._finished: queue.SimpleQueue = queue.SimpleQueue()  # one token per worker part
        self._busy = threading.Lock()  # one job at a time; other callers run serially
        for index, jobs in enumerate(self._jobs):
            threading.Thread(target=self._serve, args=(jobs,), name=f"plugrad-cpu-{index + 1}",
                             daemon=True).start()

    def _serve(self, jobs: queue.SimpleQueue) -> None:
        finished = self._finished
        while True:
            fn, parts, claims, errors = jobs.get()
            for part in claims:  # next() on itertools.count is atomic under the GIL
                if part >= parts:
                    break
                try:
                    fn(part)
                except BaseException as exc:  # re-raised on the caller's thread
                    errors.append(exc)
                finished.put(None)

    def run(self, fn: Callable[[int], None], parts: int) -> None:
        if not self._busy.acquire(blocking=False):
            for part in range(parts):
                fn(part)
            return
        try:
            errors: list[BaseException]
            claims, errors = itertools.count(), []
            job = (fn, parts, claims, errors)
            for jobs in self._jobs:
                jobs.put(job)
            mine = 0
            for part in claims:
                if part >= parts:
                    break
                try:
                    fn(part)
                except BaseException as exc:
                    errors.append(exc)
                mine += 1
            for _ in range(parts - mine):  # every part is claimed: wait for the workers' ones
                self._finished.get()
            if errors:
                raise errors[0]
        finally:
            self._busy.release()


_threads = _default_threads()
_pool: _Pool | None = None


def num_threads() -> int:
    """How many threads a kernel call may use (the caller included)."""
    return _threads


def run_parts(fn: Callable[[int], None], parts: int) -> None:
    """``fn(0), ..., fn(parts - 1)``, spread over the pool's threads; returns when all are done."""
    global _pool
    if _threads <= 1 or parts <= 1:
        for part in range(parts):
            fn(part)
        return
    if _pool is None:
        _pool = _Pool(_threads - 1)
    _pool.run(fn, parts)


def bounds(n: int, parts: int) -> list[tuple[int, int]]:
    """``parts`` ranges ``(start, stop)`` covering ``range(n)``, in order, sizes differing by at
    most one."""
    step, extra = divmod(n, parts)
    ranges, start = [], 0
    for i in range(parts):
        stop = start + step + (1 if i < extra else 0)
        ranges.append((start, stop))
        start = stop
    return ranges


def _forget_pool_after_fork() -> None:
    # A forked child has no worker threads (and maybe a lock a worker held): start afresh.
    global _pool
    _pool = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool_after_fork)
