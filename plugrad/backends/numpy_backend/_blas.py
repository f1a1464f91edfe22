"""Run NumPy's OpenBLAS on one thread, unless the user chose a thread count.

The backend already spreads its big kernels over the cores itself (``parallel.py``), so BLAS
threads on top only oversubscribe them; and OpenBLAS's threads wait for each other at every
call: on a 2-core VM with other processes running, LeNet step medians were 6x (the direct
kernels) to 28x (plugrad) slower with 2 BLAS threads than with 1, and on an idle one its
spinning workers slowed the next PyTorch step in the same process from 4.8 to 7.8 ms.

Applied once, when the numpy backend's kernels are first loaded (not at import), and only when
none of ``OPENBLAS_NUM_THREADS``, ``OMP_NUM_THREADS``, ``MKL_NUM_THREADS`` is set.
``PLUGRAD_BLAS_THREADS`` picks the count; 0 leaves the BLAS alone. The library is found among
the process's mapped files (Linux); elsewhere nothing changes.
"""
from __future__ import annotations

import ctypes
import os

__all__ = ["limit_blas_threads", "DEFAULT_BLAS_THREADS"]

DEFAULT_BLAS_THREADS = 1
_USER_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
# NumPy's wheels bundle scipy-openblas (64-bit ints, prefixed symbols); distributions link
# the plain library.
_SETTERS = ("scipy_openblas_set_num_threads64_", "scipy_openblas_set_num_threads",
            "openblas_set_num_threads64_", "openblas_set_num_threads")
_applied: list[int] = []


def limit_blas_threads() -> int:
    """Set OpenBLAS's thread count (once); returns the count set, or 0 when left alone."""
    if _applied:
        return _applied[0]
    threads = _requested()
    if threads > 0 and not _set_openblas_threads(threads):
        threads = 0
    _applied.append(threads)
    return threads


def _requested() -> int:
    value = os.environ.get("PLUGRAD_BLAS_THREADS")
    if value is None:
        if any(os.environ.get(name) for name in _USER_VARIABLES):
            return 0
        return DEFAULT_BLAS_THREADS
    try:
        return max(int(value), 0)
    except ValueError:
        return 0


def _openblas_paths() -> list[str]:
    try:
        with open("/proc/self/maps") as maps:
            paths = {line.split()[-1] for line in maps if "openblas" in line.lower()}
    except OSError:
        return []
    return sorted(path for path in paths if path.startswith("/") and ".so" in path)


def _set_openblas_threads(threads: int) -> bool:
    for path in _openblas_paths():
        try:
            library = ctypes.CDLL(path)  # already loaded by NumPy: this only finds its handle
        except OSError:
            continue
        for name in _SETTERS:
            setter = getattr(library, name, None)
            if setter is not None:
                setter.argtypes = [ctypes.c_int]
                setter.restype = None
                setter(threads)
                return True
    return False
