"""Devices: MegEngine's device strings, resolved once to a backend's device type.

A device string is ``<type><index>[:<stream>]``: ``xpux`` (the best available accelerator, else
the CPU), ``cpux``, ``gpu0``, ``gpu1:2``, or a plugin's own prefix such as ``ref0``. A tensor keeps
the logical name it was created with (``xpux:0``) while its kernels come from the resolved
device type.

The default device has two layers: :func:`set_default_device` sets it for the whole process
(MegEngine's semantics), :func:`using_device` overrides it in the calling thread only, so two
threads can each scope their own device.
"""
from __future__ import annotations

import contextlib
import os
import re
import threading
from typing import Any, Iterator

from plugrad.core import plugins
from plugrad.core.backend import DeviceType

__all__ = [
    "Device",
    "get_device",
    "get_default_device",
    "set_default_device",
    "using_device",
    "get_device_count",
    "is_cuda_available",
    "what_is_xpu",
    "available_device_types",
    "clear_cache",
]

GRAMMAR = ("'<type><index>[:<stream>]' where type is 'xpu' (best available), 'cpu', 'gpu' or a "
           "backend plugin's prefix, index is a number or 'x' (any), e.g. 'xpux', 'cpu0', "
           "'gpu1:2'")
_DEVICE_RE = re.compile(r"^(?P<type>[a-z][a-z_]*?)(?P<index>x|\d+)(?::(?P<stream>\d+))?$")


class Device:
    """A resolved device. ``str(device)`` is the logical name the tensor prints."""

    __slots__ = ("logical", "type", "index", "stream", "kernels", "physical", "dtype_of",
                 "native_dtype")

    def __init__(self, logical: str, device_type: DeviceType, index: int, stream: int):
        self.logical = logical
        self.type = device_type
        self.index = index
        self.stream = stream
        # Where the data really lives: two logical names can share it (xpux:0 and cpu0:0).
        self.physical = f"{device_type.name}{index}"
        from plugrad.core.registry import dispatch_table, dtype_tables

        self.kernels = dispatch_table(device_type)
        #: The backend's dtype objects -> plugrad's dtypes (numpy.dtype), and back.
        self.dtype_of, self.native_dtype = dtype_tables(device_type)

    def __str__(self) -> str:
        return self.logical

    def __repr__(self) -> str:
        return self.logical

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Device):
            return self.logical == other.logical
        if isinstance(other, str):
            return self.logical == other or self.logical == f"{other}:0"
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.logical)

    @property
    def backend(self) -> str:
        return self.type.backend


_lock = threading.RLock()
_cache: dict[str, Device] = {}
_availability: dict[str, tuple[bool, str | None, int]] = {}
_default_spec = os.environ.get("PLUGRAD_DEFAULT_DEVICE", "xpux")
_default_device: Device | None = None


class _Scope(threading.local):
    """This thread's :func:`using_device` override: ``(spec, device)`` or None."""

    def __init__(self) -> None:
        self.current: tuple[str, Device] | None = None


_scope = _Scope()


def clear_cache() -> None:
    """Forget resolved devices (after plugins change)."""
    global _default_device
    with _lock:
        _cache.clear()
        _availability.clear()
        _default_device = None


def _probe(device_type: DeviceType) -> tuple[bool, str | None, int]:
    """(available, reason if not, device count), asked of the plugin once."""
    cached = _availability.get(device_type.name)
    if cached is None:
        who = f"{device_type.backend!r} ({device_type.source or device_type.backend})"
        try:
            with plugins.watch(who, f"is_available()/device_count() of device type "
                                    f"{device_type.name!r}"):
                ok = bool(device_type.is_available())
                count = int(device_type.device_count()) if ok else 0
            if ok and count < 1:
                ok, reason = False, "no device found"
            else:
                reason = None if ok else "is_available() returned False"
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # the plugin's own words are the best reason
            ok, count, reason = False, 0, f"{type(exc).__name__}: {exc}"
        cached = _availability[device_type.name] = (ok, reason, count)
    return cached


def probe_within(device_type: DeviceType, seconds: float) -> tuple[bool, str | None, int]:
    """:func:`_probe`, but give up after ``seconds``: the device type then counts as
    unavailable for this process, with a reason saying it timed out (``plugrad info`` must
    finish even when a plugin's ``is_available()`` never returns)."""
    cached = _availability.get(device_type.name)
    if cached is not None:
        return cached
    worker = threading.Thread(target=_probe, args=(device_type,), daemon=True,
                              name=f"plugrad-probe-{device_type.name}")
    worker.start()
    worker.join(seconds)
    if worker.is_alive():
        return _availability.setdefault(device_type.name, (
            False, f"timed out: is_available()/device_count() did not return within "
                   f"{seconds:g} s", 0))
    return _availability[device_type.name]


def available_device_types() -> list[DeviceType]:
    """Available device types, best first (the order ``xpux`` picks from)."""
    types = [t for t in plugins.device_types().values() if _probe(t)[0]]
    return sorted(types, key=lambda t: -t.priority)


def what_is_xpu() -> str:
    """The device-type prefix ``xpu`` resolves to here (``gpu`` or ``cpu`` usually)."""
    types = available_device_types()
    if not types:
        raise RuntimeError(_no_backend_message())
    return types[0].name


def _no_backend_message() -> str:
    lines = ["no device is available: no backend plugin registered a usable device type"]
    for record in plugins.backend_records():
        lines.append(f"  backend {record.name!r} ({record.source}): {record.status}"
                     + (f": {record.reason}" if record.reason else ""))
    lines.append("run 'plugrad info' for details; the numpy backend ships with plugrad")
    return "\n".join(lines)


def _unavailable_message(spec: str, type_name: str) -> str:
    known = plugins.device_types()
    device_type = known.get(type_name)
    usable = ", ".join(t.name for t in available_device_types()) or "none"
    if device_type is not None:
        reason = _probe(device_type)[1]
        return (f"device {spec!r}: device type {type_name!r} (backend {device_type.backend!r}) is "
                f"unavailable: {reason}; available device types: {usable}")
    failed = [r for r in plugins.backend_records() if r.status == "failed"]
    hint = "".join(f"; backend {r.name!r} ({r.source}) failed to load: {r.reason}"
                   for r in failed)
    return (f"device {spec!r}: no backend provides device type {type_name!r}; available device "
            f"types: {usable}{hint}")


def _resolve(spec: str) -> Device:
    match = _DEVICE_RE.match(spec)
    if match is None:
        bare = spec if re.fullmatch(r"[a-z][a-z_]*", spec) else None
        if bare is None:
            raise ValueError(f"invalid device {spec!r}: expected {GRAMMAR}")
        match = _DEVICE_RE.match(f"{bare}x")
    type_name, index_text, stream_text = match.group("type", "index", "stream")
    stream = int(stream_text or 0)
    logical = f"{type_name}{index_text}:{stream}"
    if type_name == "xpu":
        device_type = available_device_types()[:1]
        if not device_type:
            raise RuntimeError(_no_backend_message())
        device_type = device_type[0]
    else:
        device_type = plugins.device_types().get(type_name)
        if device_type is None or not _probe(device_type)[0]:
            raise RuntimeError(_unavailable_message(spec, type_name))
    count = _probe(device_type)[2]
    index = 0 if index_text == "x" else int(index_text)
    if index >= count:
        raise ValueError(f"device {spec!r}: index {index} is out of range; device type "
                         f"{device_type.name!r} has {count} device(s)")
    return Device(logical, device_type, index, stream)


def get_device(spec: Any = None) -> Device:
    """The :class:`Device` for a device string, a Device, or ``None`` (the default device)."""
    if spec is None:
        scoped = _scope.current
        if scoped is not None:
            return scoped[1]
        return _default_device or _get_default_object()
    if isinstance(spec, Device):
        return spec
    if not isinstance(spec, str):
        raise TypeError(f"device must be a string such as 'xpux' or 'cpu0', got "
                        f"{type(spec).__name__} {spec!r}")
    device = _cache.get(spec)
    if device is None:
        with _lock:
            device = _cache.get(spec)
            if device is None:
                device = _cache[spec] = _resolve(spec.strip())
    return device


def _get_default_object() -> Device:
    global _default_device
    _default_device = get_device(_default_spec)
    return _default_device


def get_default_device() -> str:
    """The default device string of this thread: its :func:`using_device` scope if any, else
    the process-wide one (``xpux`` unless set or given by ``PLUGRAD_DEFAULT_DEVICE``)."""
    scoped = _scope.current
    return _default_spec if scoped is None else scoped[0]


def set_default_device(device: str = "xpux") -> None:
    """Make ``device`` the one new tensors go to in every thread; checked now so typos fail
    here. A :func:`using_device` scope of a thread still wins inside that thread."""
    global _default_spec, _default_device
    resolved = get_device(device)
    _default_spec, _default_device = device, resolved


@contextlib.contextmanager
def using_device(device: str) -> Iterator[Device]:
    """Scope the default device in this thread only: ``with using_device("cpu0"): ...``."""
    resolved = get_device(device)
    previous = _scope.current
    _scope.current = (device, resolved)
    try:
        yield resolved
    finally:
        _scope.current = previous


def get_device_count(device_type: str) -> int:
    """How many devices of a type (``"gpu"``, ``"cpu"``, ``"xpu"``) are usable here."""
    if device_type == "xpu":
        device_type = what_is_xpu()
    found = plugins.device_types().get(device_type)
    if found is None:
        return 0
    available, _, count = _probe(found)
    return count if available else 0


def is_cuda_available() -> bool:
    """Whether a backend offers an available ``gpu`` device."""
    return get_device_count("gpu") > 0
