"""Replace a file atomically, and clean up after writers that were killed mid-write.

The new content goes to a temporary file beside the target, is flushed and fsynced, then
renamed over the target with ``os.replace``: readers see the old file or the new one, never a
part. A writer killed outright (SIGKILL, power loss) cannot remove its temporary file, so each
temporary file's name says whose it is, ``.<target>.<host>-<pid>.<random>.tmp``, and the next
write of the same target removes those whose process is gone from this host. Files of a live
writer, of another host (a shared folder), or of another target are never touched. (On
platforms without POSIX ``kill(pid, 0)`` nothing is removed.)

The temporary file is created with mode 0o666 and the process's umask applied, as ``open``
would create the target itself.
"""
from __future__ import annotations

import contextlib
import os
import re
from typing import BinaryIO, Callable

__all__ = ["write_atomically", "temp_name_pattern"]

_NODE = os.uname().nodename if hasattr(os, "uname") else os.environ.get("COMPUTERNAME", "")
_HOST = re.sub(r"[^A-Za-z0-9]", "", _NODE)[:32] or "host"
_CREATE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0) \
    | getattr(os, "O_BINARY", 0)


def temp_name_pattern(target: str) -> re.Pattern:
    """Names of the temporary files written for ``target`` (a base name), host and pid captured."""
    return re.compile(re.escape(f".{target}.") + r"(?P<host>[A-Za-z0-9]+)-(?P<pid>[0-9]+)"
                      r"\.[0-9a-f]+\.tmp")


def write_atomically(path: str | os.PathLike, write: Callable[[BinaryIO], object],
                     who: str = "save") -> None:
    """Call ``write(handle)`` on a temporary file (what it returns is ignored), then rename it
    over ``path``.

    ``who`` names the caller in error messages. If ``write`` raises, ``path`` is unchanged and
    the temporary file is removed.
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    target = os.path.basename(path)
    _remove_stale_temps(folder, target)
    handle, temp = _create_temp(folder, target, path, who)
    try:
        with handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
    _fsync_folder(folder)


def _create_temp(folder: str, target: str, path: str, who: str) -> tuple[BinaryIO, str]:
    for _ in range(100):
        temp = os.path.join(folder, f".{target}.{_HOST}-{os.getpid()}."
                                    f"{os.urandom(4).hex()}.tmp")
        try:
            fd = os.open(temp, _CREATE_FLAGS, 0o666)  # the umask applies, as for open()
        except FileExistsError:
            continue
        except OSError as exc:
            # The OS names the temporary file; the caller asked about the target.
            raise OSError(exc.errno, f"{who}: cannot write {path!r}: {exc.strerror} (creating "
                                     f"a file in {folder!r} failed; the file is written "
                                     f"beside its target and renamed over it, so the folder "
                                     f"must exist and be writable)") from exc
        return os.fdopen(fd, "wb"), temp
    raise FileExistsError(f"{who}: cannot write {path!r}: no free temporary file name in "
                          f"{folder!r}")


def _remove_stale_temps(folder: str, target: str) -> None:
    if os.name != "posix":  # os.kill(pid, 0) would not be a harmless probe
        return
    pattern = temp_name_pattern(target)
    try:
        names = os.listdir(folder)
    except OSError:
        return
    for name in names:
        match = pattern.fullmatch(name)
        if match and match["host"] == _HOST and not _alive(int(match["pid"])):
            with contextlib.suppress(OSError):  # another writer may have removed it first
                os.unlink(os.path.join(folder, name))


def _alive(pid: int) -> bool:
    """Whether process ``pid`` exists here (unknown counts as alive: its file is kept)."""
    if pid <= 0 or pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (OSError, OverflowError):  # PermissionError: alive, someone else's
        return True
    return True


def _fsync_folder(folder: str) -> None:
    """Make the rename durable too (best effort: not every platform can open a folder)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):  # not every file system syncs directories
            os.fsync(fd)
    finally:
        os.close(fd)
