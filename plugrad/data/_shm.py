"""Moving batches from worker processes to the main process through shared memory.

Each worker owns a growing set of *slots*, POSIX shared-memory segments that it keeps
mapped. To ship a batch it copies every NumPy array into a free slot and sends only a
small header (slot id, segment name, layout, and the batch structure with the arrays
replaced by references) over a pipe. The main process maps a segment the first time it
sees it and unlinks its name at once, so nothing is left in ``/dev/shm`` whatever happens
later; the batch it returns is made of zero-copy views of the mapping. When the last of
those views is garbage-collected the slot is handed back to the worker for reuse, so in
steady state no memory is allocated and no page is faulted in per batch (fresh segments
cost far more in page faults than the copy itself).

Segment names are ``<prefix>_<n>`` with ``n`` counting up per worker; because a worker
creates at most one segment per task and tasks are answered in order, the main process
can always tell which names might exist that it has not seen, and remove them on
shutdown.
"""

from __future__ import annotations

import contextlib
from collections import deque
from multiprocessing import shared_memory
from typing import Any

import numpy as np

__all__ = ["SlotWriter", "SlotReader", "unlink_quietly"]

_ALIGN = 64
_PAGE = 4096


class _ArrayRef:
    """Placeholder for an array stored in a slot."""

    __slots__ = ("offset", "dtype", "shape")

    def __init__(self, offset: int, dtype: np.dtype, shape: tuple[int, ...]) -> None:
        self.offset = offset
        self.dtype = dtype
        self.shape = shape

    def __reduce__(self) -> Any:
        return (_ArrayRef, (self.offset, self.dtype, self.shape))


def _strip(obj: Any, arrays: list[tuple[np.ndarray, _ArrayRef]], cursor: list[int]) -> Any:
    t = type(obj)
    if t is np.ndarray and not obj.dtype.hasobject:
        ref = _ArrayRef(cursor[0], obj.dtype, obj.shape)
        cursor[0] += (obj.nbytes + _ALIGN - 1) // _ALIGN * _ALIGN
        arrays.append((obj, ref))
        return ref
    if t is tuple:
        return tuple(_strip(x, arrays, cursor) for x in obj)
    if isinstance(obj, tuple) and hasattr(obj, "_fields"):
        return t(*(_strip(x, arrays, cursor) for x in obj))
    if t is list:
        return [_strip(x, arrays, cursor) for x in obj]
    if t is dict:
        return {k: _strip(v, arrays, cursor) for k, v in obj.items()}
    return obj  # anything else travels inside the (pickled) header


def _bytes_of(shm: shared_memory.SharedMemory, count: int = -1) -> np.ndarray:
    """The segment's first ``count`` bytes (all by default) as a uint8 view."""
    buf = shm.buf
    if buf is None:  # like I/O on a closed file
        raise ValueError(f"shared memory segment {shm.name!r} is closed")
    return np.frombuffer(buf, dtype=np.uint8, count=count)


class SlotWriter:
    """Worker side: writes batches into reusable slots."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.created = 0
        self.slots: list[shared_memory.SharedMemory] = []
        self.free: list[int] = []

    def release(self, slot_ids: list[int]) -> None:
        """The main process no longer uses these slots."""
        self.free.extend(slot_ids)

    def _slot_for(self, size: int) -> int:
        fits = [s for s in self.free if self.slots[s].size >= size]
        if fits:
            slot = min(fits, key=lambda s: self.slots[s].size)
            self.free.remove(slot)
            return slot
        # Grow: replace a free (too small) slot, or add one. Only page-rounded: callers that
        # keep many batches alive pin one slot each, and /dev/shm is often small.
        alloc = -(-size // _PAGE) * _PAGE
        name = f"{self.prefix}_{self.created}"
        self.created += 1
        shm = shared_memory.SharedMemory(name=name, create=True, size=alloc)
        if self.free:
            slot = self.free.pop()
            self.slots[slot].close()
            self.slots[slot] = shm
        else:
            slot = len(self.slots)
            self.slots.append(shm)
        return slot

    def write(self, obj: Any) -> tuple[int | None, str | None, int, Any]:
        """Store ``obj``'s arrays in a slot; return the header describing the batch."""
        arrays: list[tuple[np.ndarray, _ArrayRef]] = []
        cursor = [0]
        spec = _strip(obj, arrays, cursor)
        if not arrays:
            return None, None, 0, spec
        size = max(cursor[0], 1)
        slot = self._slot_for(size)
        shm = self.slots[slot]
        flat = _bytes_of(shm, size)
        try:
            for arr, ref in arrays:
                dst = flat[ref.offset : ref.offset + arr.nbytes].view(arr.dtype).reshape(arr.shape)
                np.copyto(dst, arr, casting="no")
                del dst
        except BaseException:
            self.free.append(slot)
            raise
        finally:
            del flat
        return slot, shm.name.lstrip("/"), size, spec

    def close(self) -> None:
        for shm in self.slots:
            with contextlib.suppress(BufferError, OSError):  # a view still exported: left to exit
                shm.close()


class _Mapping:
    """The main process's mapping of one segment (name unlinked on attach)."""

    def __init__(self, name: str) -> None:
        shm = shared_memory.SharedMemory(name=name)
        with contextlib.suppress(FileNotFoundError):
            shm.unlink()  # the mapping stays valid; the name is gone from /dev/shm
        self.name = name
        self._shm = shm
        self.flat: np.ndarray | None = _bytes_of(shm)

    def __del__(self) -> None:
        self.flat = None  # drop our export of the buffer before closing it
        shm = getattr(self, "_shm", None)
        if shm is not None:
            with contextlib.suppress(BufferError, OSError):
                shm.close()


class _Lease:
    """Base object of one batch's arrays; when they all die, the slot is freed."""

    def __init__(self, mapping: _Mapping, slot: int, size: int, freed: deque[int]) -> None:
        self._mapping = mapping  # keeps the mapping alive as long as the arrays
        self._slot = slot
        self._freed = freed
        self.__array_interface__ = mapping.flat[:size].__array_interface__  # type: ignore[index]

    def __del__(self) -> None:
        self._freed.append(self._slot)  # deque.append is atomic: safe from any thread


def _rebuild(spec: Any, flat: np.ndarray) -> Any:
    t = type(spec)
    if t is _ArrayRef:
        nbytes = int(np.prod(spec.shape, dtype=np.int64)) * spec.dtype.itemsize
        return flat[spec.offset : spec.offset + nbytes].view(spec.dtype).reshape(spec.shape)
    if t is tuple:
        return tuple(_rebuild(x, flat) for x in spec)
    if isinstance(spec, tuple) and hasattr(spec, "_fields"):
        return t(*(_rebuild(x, flat) for x in spec))
    if t is list:
        return [_rebuild(x, flat) for x in spec]
    if t is dict:
        return {k: _rebuild(v, flat) for k, v in spec.items()}
    return spec


class SlotReader:
    """Main side, one per worker: turns headers into zero-copy batches."""

    def __init__(self, prefix: str, freed: deque[int]) -> None:
        self.prefix = prefix
        self.freed = freed  # slot ids to hand back to the worker with its next task
        self.seen = 0  # segments attached so far = next segment number expected
        self.mappings: dict[int, _Mapping] = {}

    def read(self, header: tuple[int | None, str | None, int, Any]) -> Any:
        slot, name, size, spec = header
        if slot is None:
            return spec
        mapping = self.mappings.get(slot)
        if mapping is None or mapping.name != name:
            mapping = _Mapping(name)  # type: ignore[arg-type]
            self.mappings[slot] = mapping
            self.seen = max(self.seen, int(name.rsplit("_", 1)[1]) + 1)  # type: ignore[union-attr]
        flat = np.asarray(_Lease(mapping, slot, size, self.freed))
        return _rebuild(spec, flat)

    def cleanup(self, pending_tasks: int) -> None:
        """Unlink any of the worker's segments whose name may still exist (those made for
        tasks never answered, or left by a failed write); missing names cost one syscall."""
        for n in range(self.seen + pending_tasks + 1):
            unlink_quietly(f"{self.prefix}_{n}")
        self.mappings.clear()


def unlink_quietly(name: str) -> None:
    """Remove segment ``name`` if it still exists."""
    try:
        shm = shared_memory.SharedMemory(name=name)
    except FileNotFoundError:
        return
    except (OSError, ValueError):
        # A worker stopped between creating the name and sizing it leaves an empty segment,
        # which cannot be mapped (nor was it registered with the resource tracker, which
        # happens after mapping): remove the name alone.
        _unlink_name(name)
        return
    try:
        with contextlib.suppress(FileNotFoundError):
            shm.unlink()
    finally:
        shm.close()


def _unlink_name(name: str) -> None:
    try:
        # what multiprocessing.shared_memory uses; CPython ships no stub for it
        from _posixshmem import shm_unlink  # type: ignore[import-not-found]
    except ImportError:  # not POSIX: segments have no names to leave behind
        return
    with contextlib.suppress(OSError):
        shm_unlink("/" + name)
