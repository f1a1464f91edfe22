"""Fetching dataset files from a list of mirrors, verified and written atomically.

A download goes to a hidden temporary file in the destination folder and only gets its
final name (via :func:`os.replace`) once it is complete and its MD5 matches, so an
interrupted or corrupt download never looks like a finished file.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import http.client
import logging
import os
import socket
import tempfile
import time
import urllib.error
import urllib.request
from typing import Any, Callable, List, Optional, Sequence

log = logging.getLogger(__name__)

__all__ = ["DownloadError", "download_file", "md5sum"]

_CHUNK = 1 << 20


class DownloadError(OSError):
    """No mirror could deliver a complete, verified copy of a file."""


def md5sum(path: str, decompress: bool = False) -> str:
    """MD5 hex digest of a file's bytes, or of its gunzipped content if ``decompress``."""
    digest = hashlib.md5()
    opener: Callable[..., Any] = gzip.open if decompress else open
    with opener(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


class _Incomplete(OSError):
    """The server closed the connection before sending the whole file."""


def _fetch_to_temp(
    url: str, dest_dir: str, filename: str, timeout: float, opener: Callable[..., Any]
) -> tuple:
    """Stream ``url`` into a temp file next to the target; return (temp path, md5)."""
    fd, tmp = tempfile.mkstemp(dir=dest_dir, prefix=".{}.".format(filename), suffix=".part")
    try:
        digest = hashlib.md5()
        received = 0
        with os.fdopen(fd, "wb") as out, opener(url, timeout=timeout) as resp:
            expected = None
            headers = getattr(resp, "headers", None)
            if headers is not None and headers.get("Content-Length"):
                expected = int(headers["Content-Length"])
            while True:
                chunk = resp.read(_CHUNK)
                if not chunk:
                    break
                out.write(chunk)
                digest.update(chunk)
                received += len(chunk)
            out.flush()
            os.fsync(out.fileno())
        if expected is not None and received != expected:
            raise _Incomplete(
                "incomplete download: received {} of {} bytes".format(received, expected)
            )
        return tmp, digest.hexdigest()
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise


def download_file(
    filename: str,
    mirrors: Sequence[str],
    dest_dir: str,
    md5: Optional[str] = None,
    timeout: float = 60.0,
    retries: int = 2,
    backoff: float = 0.5,
    opener: Optional[Callable[..., Any]] = None,
) -> str:
    """Download ``filename`` from the first mirror that yields a verified copy.

    Each mirror gets ``1 + retries`` attempts for transient failures (connection errors,
    timeouts, 5xx, short reads) with exponential ``backoff``; a 4xx answer or an MD5
    mismatch moves on to the next mirror at once. A file whose MD5 mismatches is deleted
    and reported on the ``plugrad.data.dataset.download`` logger. ``opener`` defaults to
    :func:`urllib.request.urlopen` (``file://`` mirrors work too) and exists so tests and
    unusual setups can supply their own transport. Returns the final path.
    """
    if opener is None:
        opener = urllib.request.urlopen
    os.makedirs(dest_dir, exist_ok=True)
    final = os.path.join(dest_dir, filename)
    problems: List[str] = []
    for base in mirrors:
        url = base if base.endswith("/") else base + "/"
        url += filename
        for attempt in range(retries + 1):
            log.info("downloading %s", url)
            try:
                tmp, digest = _fetch_to_temp(url, dest_dir, filename, timeout, opener)
            except urllib.error.HTTPError as exc:
                problems.append("{}: HTTP error {} {}".format(url, exc.code, exc.reason))
                if 400 <= exc.code < 500:
                    break
            except (OSError, http.client.HTTPException, socket.timeout, ValueError) as exc:
                reason = getattr(exc, "reason", None) or exc
                problems.append("{}: {}".format(url, reason))
            else:
                if md5 is not None and digest != md5:
                    os.remove(tmp)
                    msg = (
                        "{}: MD5 mismatch (expected {}, got {}); the downloaded file was "
                        "deleted".format(url, md5, digest)
                    )
                    log.warning("%s", msg)
                    problems.append(msg)
                    break
                if md5 is None:
                    log.warning("no known MD5 checksum for %s; the download was not verified",
                                filename)
                os.replace(tmp, final)
                return final
            if attempt < retries and backoff > 0:
                time.sleep(backoff * (2**attempt))
    if not mirrors:
        problems.append("no mirrors configured")
    raise DownloadError("could not download {}:\n  {}".format(filename, "\n  ".join(problems)))
