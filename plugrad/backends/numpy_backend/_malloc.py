"""Keep freed heap memory mapped, so a training loop does not page-fault its arrays back in.

A training step frees its activations and temporaries together (when the tape is released) and
allocates the same sizes again in the next step. glibc's default policy hands a large free block
at the top of the heap back to the OS, and every page of the next step's allocation then costs
a page fault: measured ~1800 faults (~7 MB) and 1-3 ms per LeNet step, a quarter of the step.
Asking malloc to keep some padding when it trims (``M_TOP_PAD``) removes them.

Setting any such option also turns off glibc's dynamic mmap threshold, freezing it wherever
the process's history had left it (128 KiB in a fresh process): every array above it would be
mmapped, and page-faulted in, afresh on each allocation. In ``benchmarks/report.py``'s process
(PyTorch beside plugrad) that froze it under 4 MiB, and a SmallVGG step took ~8000 faults and
1.2x as long (PyTorch's step 1.8x). So the threshold is set too, to the ceiling glibc's dynamic
one rises to (``DEFAULT_MMAP_THRESHOLD_MAX``, 32 MiB on 64-bit).

Applied once, when the numpy backend's kernels are first loaded (not at import), only where the
C library is glibc. ``PLUGRAD_MALLOC_TOP_PAD`` sets the padding in bytes; 0 turns this off.
"""
from __future__ import annotations

import ctypes
import os

__all__ = ["keep_freed_memory", "DEFAULT_TOP_PAD", "MMAP_THRESHOLD"]

DEFAULT_TOP_PAD = 64 << 20
#: Arrays from this size on are mmapped (and unmapped when freed), as glibc's dynamic
#: threshold would have them at most.
MMAP_THRESHOLD = 4 * 1024 * 1024 * ctypes.sizeof(ctypes.c_long)
_M_TOP_PAD, _M_MMAP_THRESHOLD = -2, -3  # from glibc's <malloc.h>
_applied: list[int] = []


def keep_freed_memory() -> int:
    """Set glibc's ``M_TOP_PAD`` and ``M_MMAP_THRESHOLD`` (once); returns the padding set, or 0
    when not applied."""
    if _applied:
        return _applied[0]
    try:
        pad = int(os.environ.get("PLUGRAD_MALLOC_TOP_PAD", DEFAULT_TOP_PAD))
    except ValueError:
        pad = 0
    if pad > 0 and _is_glibc():
        try:
            libc = ctypes.CDLL("libc.so.6")
            if libc.mallopt(_M_TOP_PAD, ctypes.c_int(min(pad, 2**31 - 1))) != 1:
                pad = 0
            else:
                libc.mallopt(_M_MMAP_THRESHOLD, ctypes.c_int(MMAP_THRESHOLD))
        except (OSError, AttributeError):
            pad = 0
    else:
        pad = 0
    _applied.append(pad)
    return pad


def _is_glibc() -> bool:
    try:
        return os.confstr("CS_GNU_LIBC_VERSION").startswith("glibc")
    except (AttributeError, ValueError, OSError):
        return False
