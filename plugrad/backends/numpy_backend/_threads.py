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

import os
import threading
from typing import Callable

__all__ = ["num_threads", "run_parts"]

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


class _Job:
    __slots__ = ("fn", "parts", "next", "left", "done", "error")

    def __init__(self, fn: Callable[[int], None], parts: int):
        self.fn = fn
        self.parts = parts
        self.next = 0  # the first part nobody has claimed
        self.left = parts  # parts not finished yet
        self.done = threading.Event()
        self.error: BaseException | None = None


class _Pool:
    def __init__(self, workers: int):
        self._lock = threading.Lock()
        self._posted = threading.Condition(self._lock)
        self._busy = threading.Lock()  # one job at a time; other callers run serially
        self._job: _Job | None = None
        self._generation = 0
        for index in range(workers):
            threading.Thread(target=self._serve, name=f"plugrad-cpu-{index + 1}",
                             daemon=True).start()

    def _serve(self) -> None:
        seen = 0
        while True:
            with self._posted:
                while self._generation == seen:
                    self._posted.wait()
                seen = self._generation
                job = self._job
            if job is not None:
                self._work(job)

    def _claim(self, job: _Job) -> int:
        with self._lock:
            part = job.next
            if part < job.parts:
                job.next = part + 1
            return part

    def _work(self, job: _Job) -> None:
        while True:
            part = self._claim(job)
            if part >= job.parts:
                return
            try:
                job.fn(part)
            except BaseException as exc:  # re-raised on the caller's thread
                job.error = exc
            with self._lock:
                job.left -= 1
                if job.left == 0:
                    job.done.set()

    def run(self, fn: Callable[[int], None], parts: int) -> None:
        if not self._busy.acquire(blocking=False):
            for part in range(parts):
                fn(part)
            return
        try:
            job = _Job(fn, parts)
            with self._posted:
                self._job = job
                self._generation += 1
                self._posted.notify_all()
            self._work(job)
            job.done.wait()
            with self._lock:
                self._job = None
            if job.error is not None:
                raise job.error
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


def _forget_pool_after_fork() -> None:
    # A forked child has no worker threads (and maybe a lock a worker held): start afresh.
    global _pool
    _pool = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool_after_fork)
