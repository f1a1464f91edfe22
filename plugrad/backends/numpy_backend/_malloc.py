"""Keep freed heap memory mapped, so a training loop does not page-fault its arrays back in.

A training step frees its activations and temporaries together (when the tape is released) and
allocates the same sizes again in the next step. glibc's default policy hands a large free block
at the top of the heap back to the OS, and every page of the next step's allocation then costs
a page fault: measured ~1800 faults (~7 MB) and 1-3 ms per LeNet step, a quarter of the step.
Asking malloc to keep some padding when it trims (``M_TOP_PAD``) removes them.

Setting any of these turns off glibc's own rule that raises the mmap threshold (from 128 KB)
each time a large mmapped block is freed, so the threshold is set too (``M_MMAP_THRESHOLD``, to
that rule's own ceiling, 32 MB): otherwise a process whose first large frees came after the
backend loaded mmapped, and page-faulted, every array over 128 KB afresh (measured: ~5500
faults per call of a 16-channel 32x32 convolution at batch 64; none with the threshold set).

Applied once, when the numpy backend's kernels are first loaded (not at import), only where the
C library is glibc. ``PLUGRAD_MALLOC_TOP_PAD`` sets the padding in bytes; 0 turns this off.
"""
from __future__ import annotations

import ctypes
import os

__all__ = ["keep_freed_memory", "DEFAULT_TOP_PAD"]

DEFAULT_TOP_PAD = 64 << 20
#: Blocks at least this large are mmapped (glibc's DEFAULT_MMAP_THRESHOLD_MAX on 64-bit).
MMAP_THRESHOLD = 32 << 20
_M_TOP_PAD = -2  # from glibc's <malloc.h>
_M_MMAP_THRESHOLD = -3
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
        return (os.confstr("CS_GNU_LIBC_VERSION") or "").startswith("glibc")  # None: not set
    except (AttributeError, ValueError, OSError):
        return False
