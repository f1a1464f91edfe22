"""Main-process side of multi-process data loading.

Batch ``b`` goes to worker ``b % num_workers`` (or, with ``divide``, every worker gets a
slice of every batch). Each worker has its own task pipe and result pipe and serves its
tasks in order, so the next message on a worker's result pipe is always the one the main
process is waiting for: batches come out in sampler order with no reordering buffer,
and the assignment of batches to workers, hence of random numbers to samples, is
deterministic. Waiting selects on the result pipe *and* the worker's process sentinel,
so a worker that dies is noticed at once rather than hanging the loop.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import multiprocessing.connection
import os
import secrets
import signal
import sys
import time
import weakref
from collections import deque
from typing import Any, Iterator

import numpy as np

from . import _shm
from ._worker import BatchFetcher, rebuild_exception, worker_loop

__all__ = ["MultiProcessIterator", "start_method"]

_PREFETCH_PER_WORKER = 2
_JOIN_TIMEOUT_S = 2.0


def start_method() -> str:
    """``fork`` on Linux when available, else ``spawn``; ``$PLUGRAD_DATA_START_METHOD``
    overrides (both must work, and the tests run both)."""
    forced = os.environ.get("PLUGRAD_DATA_START_METHOD")
    if forced:
        return forced
    if sys.platform.startswith("linux") and "fork" in mp.get_all_start_methods():
        return "fork"
    return "spawn"


def _exit_description(code: int | None) -> str:
    if code is not None and code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            return f"was killed by signal {-code}"
        text = f"was killed by signal {-code} ({name})"
        if name == "SIGBUS":
            text += "; shared memory (/dev/shm) may be too small for the batches"
        return text
    return f"exited unexpectedly with exit code {code}"


class _Pool:
    """Everything shutdown needs, kept apart from the iterator so that a finalizer can
    clean up after the iterator is garbage-collected."""

    def __init__(self) -> None:
        self.procs: list[Any] = []
        self.task_conns: list[Any] = []
        self.result_conns: list[Any] = []
        self.outstanding: list[deque[int]] = []
        self.readers: list[_shm.SlotReader] = []
        self.prefix = f"plg{os.getpid()}_{secrets.token_hex(4)}"
        self.closed = False

    def shutdown(self) -> None:
        if self.closed:
            return
        self.closed = True
        busy = any(self.outstanding)
        if not busy:  # idle workers: ask them to leave
            for conn in self.task_conns:
                with contextlib.suppress(OSError, ValueError):  # already gone
                    conn.send(None)
            deadline = time.monotonic() + _JOIN_TIMEOUT_S
            for p in self.procs:
                p.join(max(0.0, deadline - time.monotonic()))
        for p in self.procs:  # busy (early exit) or unresponsive: stop them now
            if p.is_alive():
                p.terminate()
        for p in self.procs:
            p.join(_JOIN_TIMEOUT_S)
            if p.is_alive():
                p.kill()
                p.join()
        # Segments of batches made but never received (or half made by a killed worker).
        for reader, queue in zip(self.readers, self.outstanding):
            reader.cleanup(len(queue))
            queue.clear()
        for conn in self.task_conns + self.result_conns:
            with contextlib.suppress(OSError):
                conn.close()


class MultiProcessIterator:
    """One epoch of batches computed by worker processes."""

    def __init__(
        self,
        fetcher: BatchFetcher,
        tasks: Iterator[list[Any]],
        num_workers: int,
        timeout: float,
        divide: bool,
    ) -> None:
        self._tasks = tasks
        self._num_workers = num_workers
        self._timeout = timeout
        self._divide = divide
        self._sent = 0
        self._yielded = 0
        self._exhausted = False
        self._max_ahead = _PREFETCH_PER_WORKER if divide else _PREFETCH_PER_WORKER * num_workers
        pool = self._pool = _Pool()
        self._finalizer = weakref.finalize(self, pool.shutdown)
        method = start_method()
        ctx = mp.get_context(method)
        if method != "spawn" and os.name == "posix":
            # Children must share the parent's resource tracker, or a worker-owned tracker
            # would unlink segments the main process has not received yet.
            from multiprocessing import resource_tracker

            resource_tracker.ensure_running()
        # Reproducible per-worker seeds, derived from the global NumPy RNG.
        base_seed = int(np.random.randint(0, 2**31 - 1))
        try:
            for w in range(num_workers):
                task_r, task_w = ctx.Pipe(duplex=False)
                res_r, res_w = ctx.Pipe(duplex=False)
                prefix = f"{pool.prefix}_{w}"
                # each start method's context has Process; typeshed's BaseContext does not
                proc = ctx.Process(  # type: ignore[attr-defined]
                    target=worker_loop,
                    args=(w, fetcher, task_r, res_w, base_seed + w, prefix, os.getpid()),
                    name=f"plugrad-data-worker-{w}",
                    daemon=True,
                )
                proc.start()
                task_r.close()  # the child owns these ends now
                res_w.close()
                pool.procs.append(proc)
                pool.task_conns.append(task_w)
                pool.result_conns.append(res_r)
                pool.outstanding.append(deque())
                pool.readers.append(_shm.SlotReader(prefix, deque()))
            self._fill()
        except BaseException:
            self.close()
            raise

    def __iter__(self) -> MultiProcessIterator:
        return self

    def close(self) -> None:
        """Stop the workers and release every shared-memory segment still pending."""
        self._finalizer()

    def _send(self, w: int, task_id: int, payload: list[Any]) -> None:
        pool = self._pool
        pool.outstanding[w].append(task_id)
        freed = pool.readers[w].freed
        released = [freed.popleft() for _ in range(len(freed))]
        try:
            pool.task_conns[w].send((task_id, payload, released))
        except (BrokenPipeError, OSError):
            self._raise_dead(w)

    def _fill(self) -> None:
        n = self._num_workers
        while not self._exhausted and self._sent - self._yielded < self._max_ahead:
            try:
                payload = list(next(self._tasks))
            except StopIteration:
                self._exhausted = True
                return
            except BaseException:  # the sampler or the stream failed: stop the workers too
                self.close()
                raise
            b = self._sent
            if self._divide:
                k, r = divmod(len(payload), n)
                start = 0
                for w in range(n):
                    stop = start + k + (1 if w < r else 0)
                    self._send(w, b * n + w, payload[start:stop])
                    start = stop
            else:
                self._send(b % n, b, payload)
            self._sent += 1

    def __next__(self) -> Any:
        if self._pool.closed:
            raise StopIteration
        if self._yielded == self._sent:
            self.close()
            raise StopIteration
        b = self._yielded
        n = self._num_workers
        if self._divide:
            pieces = [self._receive(w, b * n + w, b) for w in range(n)]
            batch = _merge([p for p in pieces if p is not None])
        else:
            batch = self._receive(b % n, b, b)
        self._yielded += 1
        self._fill()
        return batch

    def _receive(self, w: int, task_id: int, batch: int) -> Any:
        pool = self._pool
        conn, proc = pool.result_conns[w], pool.procs[w]
        deadline = time.monotonic() + self._timeout if self._timeout > 0 else None
        while True:
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            ready = mp.connection.wait([conn, proc.sentinel], timeout=remaining)
            if conn in ready:
                try:
                    status, got_id, info = conn.recv()
                except (EOFError, OSError):
                    self._raise_dead(w)
                break
            if ready:  # only the sentinel: the worker died without answering
                if conn.poll(0):
                    continue
                self._raise_dead(w)
            else:
                self.close()
                raise RuntimeError(
                    f"DataLoader timed out: no batch within timeout={self._timeout} s "
                    f"(waiting for batch {batch} "
                    f"from worker {w}, pid {proc.pid})"
                )
        if got_id != task_id:  # cannot happen with in-order workers; never hand out a wrong batch
            self.close()
            raise RuntimeError(
                f"DataLoader worker {w} answered task {got_id} instead of {task_id}"
            )
        pool.outstanding[w].popleft()
        if status == "err":
            self.close()
            raise rebuild_exception(info, w, proc.pid)
        return pool.readers[w].read(info)

    def _raise_dead(self, w: int) -> None:
        proc = self._pool.procs[w]
        proc.join(0.1)
        code = proc.exitcode
        self.close()
        raise RuntimeError(
            f"DataLoader worker {w} (pid {proc.pid}) {_exit_description(code)}"
        )


def _merge(pieces: list[Any]) -> Any:
    """Join the collated slices of one batch (``divide=True``) along the batch axis."""
    if not pieces:
        return None
    first = pieces[0]
    if len(pieces) == 1:
        return first
    if isinstance(first, np.ndarray):
        return np.concatenate(pieces, axis=0)
    if isinstance(first, dict):
        return {k: _merge([p[k] for p in pieces]) for k in first}
    if isinstance(first, tuple):
        fields = [_merge(list(f)) for f in zip(*pieces)]
        return type(first)(*fields) if hasattr(first, "_fields") else tuple(fields)
    if isinstance(first, list):
        if first and isinstance(first[0], (np.ndarray, dict, tuple, list)):
            return [_merge(list(f)) for f in zip(*pieces)]
        return [x for p in pieces for x in p]
    raise TypeError(
        "divide=True needs collated batches made of arrays, tuples, lists or dicts; "
        f"got {type(first).__name__}"
    )
