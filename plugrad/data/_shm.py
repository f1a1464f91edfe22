"""Moving batches from worker processes to the main process through shared memory.

A worker packs every NumPy array of a batch into one fresh POSIX shared-memory segment
and sends only a small header (segment name, layout, and the batch structure with the
arrays replaced by references) over a pipe. The main process maps the segment, unlinks
its name at once (so nothing is left in ``/dev/shm`` whatever happens next) and returns
arrays that are views of the mapping: no copy is made, and the memory is released when
the last of those arrays is garbage-collected.
"""
from __future__ import annotations

from multiprocessing import shared_memory
from typing import Any, List, Optional, Tuple

import numpy as np

__all__ = ["pack", "unpack", "unlink_quietly"]

_ALIGN = 64


class _ArrayRef:
    """Placeholder for an array stored in the segment."""

    __slots__ = ("offset", "dtype", "shape")

    def __init__(self, offset: int, dtype: np.dtype, shape: Tuple[int, ...]) -> None:
        self.offset = offset
        self.dtype = dtype
        self.shape = shape

    def __reduce__(self) -> Any:
        return (_ArrayRef, (self.offset, self.dtype, self.shape))


def _strip(obj: Any, arrays: List[np.ndarray], refs: List[_ArrayRef], cursor: List[int]) -> Any:
    t = type(obj)
    if t is np.ndarray and not obj.dtype.hasobject:
        ref = _ArrayRef(cursor[0], obj.dtype, obj.shape)
        cursor[0] += (obj.nbytes + _ALIGN - 1) // _ALIGN * _ALIGN
        arrays.append(obj)
        refs.append(ref)
        return ref
    if t is tuple:
        return tuple(_strip(x, arrays, refs, cursor) for x in obj)
    if isinstance(obj, tuple) and hasattr(obj, "_fields"):
        return t(*(_strip(x, arrays, refs, cursor) for x in obj))
    if t is list:
        return [_strip(x, arrays, refs, cursor) for x in obj]
    if t is dict:
        return {k: _strip(v, arrays, refs, cursor) for k, v in obj.items()}
    return obj  # anything else travels inside the (pickled) header


def pack(obj: Any, name: str) -> Tuple[Optional[str], int, Any]:
    """Copy the arrays of ``obj`` into a new segment called ``name``; return the header."""
    arrays: List[np.ndarray] = []
    refs: List[_ArrayRef] = []
    cursor = [0]
    spec = _strip(obj, arrays, refs, cursor)
    if not arrays:
        return None, 0, spec
    size = max(cursor[0], 1)
    shm = shared_memory.SharedMemory(name=name, create=True, size=size)
    try:
        flat = np.frombuffer(shm.buf, dtype=np.uint8, count=size)
        for arr, ref in zip(arrays, refs):
            dst = flat[ref.offset : ref.offset + arr.nbytes].view(arr.dtype).reshape(arr.shape)
            np.copyto(dst, arr, casting="no")
        del flat, dst
    except BaseException:
        shm.close()
        shm.unlink()
        raise
    shm.close()
    return name, size, spec


class _Segment:
    """Keeps a mapped segment alive for as long as any array viewing it exists.

    NumPy arrays built from this object (via ``__array_interface__``) hold a reference to
    it, so the mapping is closed exactly when the last view dies.
    """

    def __init__(self, name: str, size: int) -> None:
        shm = shared_memory.SharedMemory(name=name)
        try:
            shm.unlink()  # the mapping stays valid; the name is gone from /dev/shm
        except FileNotFoundError:
            pass
        self._shm = shm
        self._flat: Optional[np.ndarray] = np.frombuffer(shm.buf, dtype=np.uint8, count=size)
        self.__array_interface__ = self._flat.__array_interface__

    def __del__(self) -> None:
        self._flat = None  # drop our export of the buffer before closing it
        shm = getattr(self, "_shm", None)
        if shm is not None:
            try:
                shm.close()
            except (BufferError, OSError):
                pass


def _rebuild(spec: Any, flat: Optional[np.ndarray]) -> Any:
    t = type(spec)
    if t is _ArrayRef:
        nbytes = int(np.prod(spec.shape, dtype=np.int64)) * spec.dtype.itemsize
        return flat[spec.offset : spec.offset + nbytes].view(spec.dtype).reshape(spec.shape)  # type: ignore[index]
    if t is tuple:
        return tuple(_rebuild(x, flat) for x in spec)
    if isinstance(spec, tuple) and hasattr(spec, "_fields"):
        return t(*(_rebuild(x, flat) for x in spec))
    if t is list:
        return [_rebuild(x, flat) for x in spec]
    if t is dict:
        return {k: _rebuild(v, flat) for k, v in spec.items()}
    return spec


def unpack(header: Tuple[Optional[str], int, Any]) -> Any:
    """Rebuild a packed batch as zero-copy views of its segment (unlinking the name)."""
    name, size, spec = header
    if name is None:
        return spec
    flat = np.asarray(_Segment(name, size))
    return _rebuild(spec, flat)


def unlink_quietly(name: str) -> None:
    """Remove segment ``name`` if it still exists (cleanup of batches never received)."""
    try:
        shm = shared_memory.SharedMemory(name=name)
    except (FileNotFoundError, OSError, ValueError):
        return
    try:
        shm.unlink()
    except FileNotFoundError:
        pass
    finally:
        shm.close()
