"""Reader for the IDX file format used by MNIST-like datasets, gzipped or raw.

An IDX file is a 4-byte big-endian magic number (two zero bytes, a type code, the number
of dimensions), one big-endian uint32 per dimension, then the data in C order. Every way
such a file can be damaged is reported as an :class:`IDXFormatError` naming the file.
"""

from __future__ import annotations

import gzip
import os
import struct
import zlib
from typing import BinaryIO

import numpy as np

__all__ = ["IDXFormatError", "read_idx", "open_maybe_gzip", "IMAGES_MAGIC", "LABELS_MAGIC"]

IMAGES_MAGIC = 2051  # unsigned bytes, 3 dimensions
LABELS_MAGIC = 2049  # unsigned bytes, 1 dimension
_UBYTE = 0x08
_GZIP_SIGNATURE = b"\x1f\x8b"


class IDXFormatError(ValueError):
    """An IDX file is truncated, corrupt or not the kind of file expected."""


def open_maybe_gzip(path: str) -> tuple[BinaryIO, bool]:
    """Open ``path`` for reading, transparently decompressing it if it is gzip data.

    The content is sniffed rather than trusting the ``.gz`` suffix, since an IDX file
    always starts with two zero bytes and a gzip stream never does.
    """
    raw = open(path, "rb")
    try:
        head = raw.read(2)
        raw.seek(0)
    except BaseException:
        raw.close()
        raise
    if head == _GZIP_SIGNATURE:
        return gzip.GzipFile(fileobj=raw, mode="rb"), True  # type: ignore[return-value]
    return raw, False


def _read_exact(f: BinaryIO, n: int) -> bytes:
    chunks = []
    while n > 0:
        chunk = f.read(n)
        if not chunk:
            break
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def _readinto_full(f: BinaryIO, out: np.ndarray) -> int:
    if not out.size:  # a memoryview of a zero-sized array cannot be cast to bytes
        return 0
    view = out.data.cast("B")
    pos, total = 0, view.nbytes
    while pos < total:
        got = f.readinto(view[pos:])  # type: ignore[attr-defined]
        if not got:
            break
        pos += got
    return pos


def read_idx(
    path: str, expected_magic: int, expected_dims: tuple[int | None, ...] | None = None
) -> np.ndarray:
    """Read an unsigned-byte IDX file into a new writable uint8 array.

    ``expected_dims`` may pin some dimensions (``None`` leaves one free); a mismatch, a bad
    magic number, a short or overlong payload and a damaged gzip stream all raise
    :class:`IDXFormatError` with the file name and the problem.
    """
    name = os.path.basename(path)
    f, gz = open_maybe_gzip(path)
    what = "gzip-compressed IDX file" if gz else "IDX file"
    try:
        with f:
            try:
                header = _read_exact(f, 4)
                if len(header) < 4:
                    raise IDXFormatError(
                        f"{name}: file is truncated: only {len(header)} bytes, "
                        "too short for the 4-byte IDX magic number"
                    )
                (magic,) = struct.unpack(">I", header)
                zero, dtype_code, ndim = magic >> 16, (magic >> 8) & 0xFF, magic & 0xFF
                if magic != expected_magic:
                    detail = ""
                    if zero != 0:
                        detail = " (not an IDX file)"
                    elif dtype_code != _UBYTE:
                        detail = (f" (data type code 0x{dtype_code:02x}, "
                                  "expected 0x08 unsigned byte)")
                    else:
                        detail = f" ({ndim} dimensions)"
                    raise IDXFormatError(
                        f"{name}: bad magic number {magic}{detail}; expected {expected_magic}"
                    )
                dims_raw = _read_exact(f, 4 * ndim)
                if len(dims_raw) < 4 * ndim:
                    raise IDXFormatError(
                        f"{name}: file is truncated inside the header: expected {ndim} dimension "
                        f"sizes ({4 * ndim} bytes), found {len(dims_raw)} bytes"
                    )
                dims = struct.unpack(">" + "I" * ndim, dims_raw)
                if expected_dims is not None:
                    for axis, (want, got) in enumerate(zip(expected_dims, dims)):
                        if want is not None and want != got:
                            raise IDXFormatError(
                                "{}: dimension {} is {}, expected {} (header dims {})".format(
                                    name, axis, got, want, "x".join(map(str, dims))
                                )
                            )
                payload = int(np.prod(dims, dtype=np.int64))
                header_len = 4 + 4 * ndim
                if not gz:
                    size = os.fstat(f.fileno()).st_size
                    if size != header_len + payload:
                        _raise_size(name, dims, header_len, payload, size - header_len)
                out = np.empty(dims, dtype=np.uint8)
                got = _readinto_full(f, out)
                if got < payload:
                    _raise_size(name, dims, header_len, payload, got)
                extra = f.read(1)  # also makes gzip verify its CRC and length trailer
                if extra:
                    rest = len(extra) + len(f.read())
                    _raise_size(name, dims, header_len, payload, payload + rest)
                return out
            except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
                raise IDXFormatError(
                    f"{name}: corrupt {what}: {exc or type(exc).__name__}"
                ) from exc
    except IDXFormatError:
        raise
    except OSError as exc:
        raise IDXFormatError(f"{name}: cannot read {what}: {exc}") from exc


def _raise_size(
    name: str, dims: tuple[int, ...], header_len: int, payload: int, found: int
) -> None:
    shape = "x".join(map(str, dims))
    if found < payload:
        raise IDXFormatError(
            f"{name}: file is truncated: its header declares {shape} = {payload} data bytes "
            f"after the {header_len}-byte header, but only {found} are present"
        )
    raise IDXFormatError(
        f"{name}: file is too long: its header declares {shape} = {payload} data bytes "
        f"after the {header_len}-byte header, but {found - payload} extra bytes follow them"
    )
