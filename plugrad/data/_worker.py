"""Building batches, and the loop that DataLoader worker processes run.

This module must stay importable on its own in a freshly spawned interpreter: the worker
entry point and everything it receives are pickled by reference to it.
"""

from __future__ import annotations

import os
import pickle
import random
import traceback
from typing import Any

import numpy as np

from . import _shm
from .collator import Collator, SampleShapeError
from .transform.meta_transform import _owner

__all__ = ["BatchFetcher", "worker_loop", "RemoteTraceback", "rebuild_exception"]

_PARENT_CHECK_S = 1.0  # how often an idle worker checks that its parent is still alive


def _contiguous(obj: Any) -> Any:
    if isinstance(obj, np.ndarray):
        return np.ascontiguousarray(obj)
    if type(obj) is tuple:
        return tuple(_contiguous(x) for x in obj)
    return obj


class BatchFetcher:
    """Turns one task (a list of indices, or raw stream items) into a collated batch.

    It takes the vectorised path (gather the whole batch with one fancy-index per field,
    transform the stacked arrays) only when that provably equals the per-sample path:
    the dataset's ``_get_stacked`` comes from the same class as its ``__getitem__``, every
    transform supports it, and the collator is the default one.
    """

    def __init__(self, dataset: Any, transform: Any, collator: Any, stream: bool) -> None:
        # Stream items are read by the main process; workers never touch the dataset (which
        # may hold an unpicklable handle such as a socket).
        self.dataset = None if stream else dataset
        self.transform = transform
        self.collator = collator
        self.stream = stream
        self.stacked = bool(
            not stream
            and getattr(dataset, "_stackable", False)
            and _owner(dataset, "_get_stacked") is not None
            and _owner(dataset, "_get_stacked") is _owner(dataset, "__getitem__")
            and type(collator) is Collator
            and transform._supports_stacked()
        )

    def __call__(self, payload: list[Any]) -> Any:
        if not len(payload):
            return None
        if self.stream:
            items = payload
        else:
            dataset = self.dataset
            assert dataset is not None  # only a stream's fetcher goes without its dataset
            if self.stacked:
                return _contiguous(self.transform._apply_stacked(dataset._get_stacked(payload)))
            items = [dataset[i] for i in payload]
        try:
            return self.collator.apply(self.transform.apply_batch(items))
        except SampleShapeError as exc:
            if self.stream:
                raise
            raise SampleShapeError(f"{exc} (dataset index {payload[exc.position]})",
                                   exc.position) from None


class RemoteTraceback(Exception):
    """Carries a worker's formatted traceback; set as ``__cause__`` of re-raised errors."""

    def __init__(self, tb: str) -> None:
        super().__init__(tb)
        self.tb = tb

    def __str__(self) -> str:
        return self.tb


def _describe_exception(
    exc: BaseException,
) -> tuple[bytes | None, bytes | None, str, str, str]:
    tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    data: bytes | None
    try:
        data = pickle.dumps(exc)
        pickle.loads(data)  # some exceptions pickle but cannot be rebuilt
    except Exception:
        data = None
    try:
        etype: bytes | None = pickle.dumps(type(exc))
    except Exception:
        etype = None
    return data, etype, type(exc).__qualname__, str(exc), tb


def rebuild_exception(info: tuple[Any, ...], worker_id: int, pid: int | None) -> BaseException:
    """Recreate a worker's exception: same type and message, worker traceback attached."""
    data, etype, type_name, message, tb = info
    exc: BaseException | None = None
    if data is not None:
        try:
            exc = pickle.loads(data)
        except Exception:
            exc = None
    if exc is None and etype is not None:
        try:
            exc = pickle.loads(etype)(message)
        except Exception:
            exc = None
    if exc is None:
        exc = RuntimeError(f"{type_name}: {message}")
    where = f"DataLoader worker {worker_id} (pid {pid})"
    exc.__cause__ = RemoteTraceback(f'\n"""\nTraceback in {where}:\n{tb.rstrip()}"""')
    if hasattr(exc, "add_note"):
        exc.add_note(f"(raised in {where}; its traceback is shown above)")
    return exc


def _seed(seed: int) -> None:
    np.random.seed(seed % (2**32))
    random.seed(seed)


def worker_loop(
    worker_id: int,
    fetcher: BatchFetcher,
    task_conn: Any,
    result_conn: Any,
    seed: int,
    shm_prefix: str,
    parent_pid: int,
) -> None:
    """Serve tasks in arrival order until told to stop (``None``) or orphaned."""
    writer = _shm.SlotWriter(shm_prefix)
    try:
        _seed(seed)
        while True:
            try:
                if not task_conn.poll(_PARENT_CHECK_S):
                    if os.getppid() != parent_pid:
                        return
                    continue
                task = task_conn.recv()
            except (EOFError, OSError):
                return
            if task is None:
                return
            task_id, payload, freed = task
            writer.release(freed)
            try:
                header = writer.write(fetcher(payload))
                msg: tuple[Any, ...] = ("ok", task_id, header)
            except Exception as exc:  # reported to the main process, which re-raises it
                msg = ("err", task_id, _describe_exception(exc))
            try:
                result_conn.send(msg)
            except (BrokenPipeError, OSError):
                return
    except KeyboardInterrupt:
        return
    finally:
        writer.close()
