"""Backend discovery: entry points and pluggy hooks, run once, lazily.

Nothing here runs at ``import plugrad``. The first device resolution calls :func:`device_types`,
which imports every plugin named in the ``plugrad.backends`` entry-point group, checks its API
version and collects the device types it registers. A plugin that fails is recorded with its
reason and never stops plugrad or the other plugins from working.

Every plugin's import and registration is timed (``BackendRecord.load_seconds``) and contained:
any exception, SystemExit included, marks that plugin failed; only KeyboardInterrupt gets through.
A plugin hook still running after ``PLUGRAD_PLUGIN_TIMEOUT`` seconds is named on stderr, so a
hang says who hangs.

Environment:
    PLUGRAD_BACKENDS: comma-separated entry-point names to load (an allowlist); unset loads all.
    PLUGRAD_AUTOLOAD_BACKENDS: ``0`` turns entry-point scanning off; backends then come only from
        :func:`register_plugin`.
    PLUGRAD_PLUGIN_TIMEOUT: seconds before a still-running plugin hook is reported (default 10).
"""
from __future__ import annotations

import contextlib
import os
import re
import sys
import threading
import time
import traceback
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, Iterator, Mapping

import numpy as np
import pluggy

from plugrad.core.backend import API_VERSION, DeviceType, PluginError

if sys.version_info >= (3, 10):
    from importlib.metadata import EntryPoint, entry_points
else:  # pragma: no cover - plugrad needs 3.10, kept for clarity
    from importlib_metadata import EntryPoint, entry_points

__all__ = [
    "ENTRY_POINT_GROUP",
    "BackendRecord",
    "BackendRegistrar",
    "PluginError",
    "backend_records",
    "device_types",
    "register_plugin",
    "reset",
    "watch",
]

ENTRY_POINT_GROUP = "plugrad.backends"
_NAME_RE = re.compile(r"^[a-z][a-z_]*$")
_RESERVED_PREFIXES = {"xpu"}
_KNOWN_DTYPES = {
    "bool", "int8", "uint8", "int16", "int32", "int64",
    "float16", "float32", "float64", "bfloat16",
}


@dataclass
class BackendRecord:
    """What plugrad knows about one plugin: where it came from and whether it loaded."""

    name: str
    module: str
    distribution: str | None = None
    version: str | None = None
    status: str = "pending"  # "loaded" or "failed"
    reason: str | None = None
    device_types: list[str] = field(default_factory=list)
    #: Seconds spent importing the plugin and running its registration hooks.
    load_seconds: float | None = None

    @property
    def source(self) -> str:
        if self.distribution:
            return f"{self.distribution} {self.version or ''}".strip()
        return self.module


class BackendRegistrar:
    """Handed to ``plugrad_register``: validates and collects one plugin's device types."""

    def __init__(self, record: BackendRecord, taken: dict[str, DeviceType]):
        self._record = record
        self._taken = taken
        self.added: list[DeviceType] = []

    def add_device_type(self, device_type: DeviceType) -> None:
        """Declare a device type; raises :class:`PluginError` naming the plugin on bad input."""
        who = f"backend plugin {self._record.name!r} ({self._record.source})"
        if not isinstance(device_type, DeviceType):
            raise PluginError(f"{who}: add_device_type expects a plugrad DeviceType; got "
                              f"{type(device_type).__name__}")
        name = device_type.name
        if not isinstance(name, str) or not _NAME_RE.match(name) or name in _RESERVED_PREFIXES:
            raise PluginError(f"{who}: device type name {name!r} is invalid; expected lowercase "
                              f"letters and underscores, not 'xpu' (e.g. 'ref')")
        taken = self._taken.get(name) or next((d for d in self.added if d.name == name), None)
        if taken is not None:
            owner = f"{taken.backend!r} ({taken.source})" if taken.source else repr(taken.backend)
            raise PluginError(f"{who}: device type {name!r} is already registered by backend "
                              f"{owner}; pick another prefix for this plugin's devices")
        dtypes = device_type.dtypes
        if isinstance(dtypes, str) or not all(isinstance(d, str) for d in dtypes):
            raise PluginError(f"{who}: DeviceType.dtypes of {name!r} must be a tuple of dtype "
                              f"names such as ('float32', 'int32'); got {dtypes!r}")
        unknown = [d for d in dtypes if d not in _KNOWN_DTYPES]
        if not dtypes or unknown:
            raise PluginError(f"{who}: device type {name!r} declares unknown dtypes {unknown}; "
                              f"known: {sorted(_KNOWN_DTYPES)}")
        for attr in ("to_host", "from_host", "is_available", "device_count", "synchronize"):
            if not callable(getattr(device_type, attr)):
                raise PluginError(f"{who}: DeviceType.{attr} of {name!r} must be callable; got "
                                  f"{type(getattr(device_type, attr)).__name__}")
        if device_type.device_scope is not None and not callable(device_type.device_scope):
            raise PluginError(f"{who}: DeviceType.device_scope of {name!r} must be callable or "
                              f"None")
        if not (callable(device_type.kernels) or isinstance(device_type.kernels, Mapping)):
            raise PluginError(f"{who}: DeviceType.kernels of {name!r} must be a dict of kernels "
                              f"or a callable returning one; got "
                              f"{type(device_type.kernels).__name__}")
        kinds = device_type.array_types
        if not isinstance(kinds, tuple) or not all(isinstance(k, type) for k in kinds):
            raise PluginError(f"{who}: DeviceType.array_types of {name!r} must be a tuple of "
                              f"classes; got {kinds!r}")
        if not isinstance(device_type.priority, int) or isinstance(device_type.priority, bool):
            raise PluginError(f"{who}: DeviceType.priority of {name!r} must be an int; got "
                              f"{device_type.priority!r}")
        if isinstance(device_type.namespace, ModuleType):  # a lazy one is checked on first use
            from plugrad.backends.generic import missing_functions

            missing = missing_functions(device_type.namespace)
            if missing:
                raise PluginError(f"{who}: the array namespace {device_type.namespace.__name__!r} "
                                  f"of {name!r} lacks {', '.join(missing)}, which plugrad's "
                                  f"generic kernels call; give a namespace that follows the "
                                  f"Array API standard (array_api_compat wraps most libraries)")
        device_type.backend = self._record.name
        device_type.source = self._record.source
        self.added.append(device_type)


_lock = threading.RLock()
_records: dict[str, BackendRecord] | None = None
_device_types: dict[str, DeviceType] = {}
_explicit: list[tuple[str, ModuleType | Any]] = []


def _hook_manager() -> pluggy.PluginManager:
    from plugrad import hookspecs

    pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    return pm


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def watchdog_seconds() -> float:
    """How long a plugin hook may run before it is named on stderr (PLUGRAD_PLUGIN_TIMEOUT)."""
    try:
        return float(os.environ.get("PLUGRAD_PLUGIN_TIMEOUT", "10"))
    except ValueError:
        return 10.0


class _Watchdog:
    """One daemon thread that names plugin hooks running past their deadline on stderr.

    A single long-lived thread, started on first use: a timer thread per hook would leave
    glibc a trail of dead threads' arenas, which measurably costs the numpy backend's kernel
    threads page faults afterwards.
    """

    def __init__(self) -> None:
        self._wake = threading.Condition()
        self._running: dict[int, list] = {}  # token -> [deadline, message, reported]
        self._tokens = 0
        self._thread: threading.Thread | None = None

    def start(self, message: str, delay: float) -> int:
        with self._wake:
            if self._thread is None:
                self._thread = threading.Thread(target=self._serve, name="plugrad-watchdog",
                                                daemon=True)
                self._thread.start()
            self._tokens += 1
            self._running[self._tokens] = [time.monotonic() + delay, message, False]
            self._wake.notify()
            return self._tokens

    def stop(self, token: int) -> None:
        with self._wake:
            self._running.pop(token, None)

    def _serve(self) -> None:
        with self._wake:
            while True:
                now = time.monotonic()
                waiting = [entry for entry in self._running.values() if not entry[2]]
                for entry in waiting:
                    if entry[0] <= now:
                        entry[2] = True
                        print(entry[1], file=sys.stderr, flush=True)
                pending = [entry[0] for entry in waiting if not entry[2]]
                self._wake.wait(min(pending) - now if pending else None)


_watchdog = _Watchdog()


@contextlib.contextmanager
def watch(who: str, what: str) -> Iterator[None]:
    """Run a plugin hook under the watchdog: ``who`` is named on stderr if it runs too long.

    Plugin hooks run once per process (discovery, the first probe), never per op.
    """
    delay = watchdog_seconds()
    token = _watchdog.start(
        f"plugrad: backend plugin {who} has been running {what} for {delay:g} s and has not "
        f"returned; if it hangs, leave it out with PLUGRAD_BACKENDS=<the others> or "
        f"uninstall it", delay)
    try:
        yield
    finally:
        _watchdog.stop(token)


def _load_plugin(record: BackendRecord, plugin: Any) -> None:
    """Check one plugin's API version and collect its device types into the global table.

    Anything the plugin raises, SystemExit included, fails the plugin and nothing else.
    """
    pm = _hook_manager()
    try:
        pm.register(plugin, name=record.name)
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # pluggy validates hook signatures here
        record.status, record.reason = "failed", f"invalid hook implementation: {_describe(exc)}"
        return
    who = f"{record.name!r} ({record.source})"
    try:
        with watch(who, "plugrad_api_version()"):
            version = pm.hook.plugrad_api_version()
    except KeyboardInterrupt:
        raise
    except BaseException as exc:
        record.status, record.reason = "failed", f"plugrad_api_version raised {_describe(exc)}"
        return
    if version is None:
        record.status = "failed"
        record.reason = "implements no plugrad_api_version hook; it must return the API version"
        return
    if not isinstance(version, int) or isinstance(version, bool):
        record.status = "failed"
        record.reason = (f"plugrad_api_version returned {version!r}; expected the int "
                         f"{API_VERSION} (return plugrad.hookspecs.API_VERSION)")
        return
    if version != API_VERSION:
        record.status = "failed"
        record.reason = (f"built for backend API version {version}, but this plugrad speaks "
                         f"version {API_VERSION}; install a release of the plugin for "
                         f"API {API_VERSION}")
        return
    registrar = BackendRegistrar(record, _device_types)
    try:
        with watch(who, "plugrad_register()"):
            pm.hook.plugrad_register(registry=registrar)
    except KeyboardInterrupt:
        raise
    except BaseException as exc:
        record.status, record.reason = "failed", f"plugrad_register raised {_describe(exc)}"
        return
    if not registrar.added:
        record.status, record.reason = "failed", "registered no device type"
        return
    for device_type in registrar.added:
        _device_types[device_type.name] = device_type
    record.status = "loaded"
    record.device_types = [d.name for d in registrar.added]


def _distribution(ep: EntryPoint) -> tuple[str | None, str | None]:
    dist = getattr(ep, "dist", None)
    if dist is None:
        return None, None
    return dist.metadata["Name"], dist.version


def _builtin(ep: EntryPoint) -> bool:
    return ep.value.startswith("plugrad.backends.")


def _selected_entry_points() -> list[EntryPoint]:
    """Entry points to load: plugrad's own first (so no plugin can take 'cpu'), then by name."""
    if os.environ.get("PLUGRAD_AUTOLOAD_BACKENDS", "1").strip().lower() in ("0", "false", "no"):
        return []
    found = sorted(entry_points(group=ENTRY_POINT_GROUP),
                   key=lambda ep: (not _builtin(ep), ep.name))
    allow = os.environ.get("PLUGRAD_BACKENDS")
    if allow is not None:
        wanted = {name.strip() for name in allow.split(",") if name.strip()}
        found = [ep for ep in found if ep.name in wanted]
    return found


def _discover() -> dict[str, BackendRecord]:
    records: dict[str, BackendRecord] = {}
    for ep in _selected_entry_points():
        distribution, version = _distribution(ep)
        record = BackendRecord(name=ep.name, module=ep.value, distribution=distribution,
                               version=version)
        first = records.get(ep.name)
        if first is not None:
            # The same distribution can be visible twice (editable + site): keep one quietly.
            if first.distribution == distribution:
                continue
            record.name = f"{ep.name}@{distribution}"
            record.status = "failed"
            record.reason = (f"entry-point name {ep.name!r} is already used by {first.source}; "
                             f"rename this plugin's entry point in the 'plugrad.backends' group")
            records[record.name] = record
            continue
        records[ep.name] = record
        start = time.perf_counter()
        try:
            with watch(f"{ep.name!r} ({record.source})", f"its import ({ep.value})"):
                plugin = ep.load()
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # a broken plugin must never break plugrad, nor exit it
            last = traceback.extract_tb(exc.__traceback__)[-1:]
            where = f" at {last[0].filename}:{last[0].lineno}" if last else ""
            record.status, record.reason = "failed", f"import failed: {_describe(exc)}{where}"
        else:
            _load_plugin(record, plugin)
        record.load_seconds = time.perf_counter() - start
    for name, plugin in _explicit:
        record = BackendRecord(name=name, module=getattr(plugin, "__name__", repr(plugin)))
        records[name] = record
        _timed_load(record, plugin)
    return records


def _timed_load(record: BackendRecord, plugin: Any) -> None:
    start = time.perf_counter()
    _load_plugin(record, plugin)
    record.load_seconds = time.perf_counter() - start


def _ensure_loaded() -> dict[str, BackendRecord]:
    global _records
    if _records is None:
        with _lock:
            if _records is None:
                _records = _discover()
    return _records


def backend_records() -> list[BackendRecord]:
    """Every plugin found, loaded or failed, in discovery order."""
    return list(_ensure_loaded().values())


def device_types() -> dict[str, DeviceType]:
    """Registered device types by prefix (``cpu``, ``gpu``, ...); discovers plugins once."""
    _ensure_loaded()
    return _device_types


def register_plugin(plugin: ModuleType | Any, name: str | None = None) -> BackendRecord:
    """Load a plugin object or module directly, without an entry point.

    Useful with ``PLUGRAD_AUTOLOAD_BACKENDS=0`` and in tests. Returns its record.
    """
    name = name or getattr(plugin, "__name__", type(plugin).__name__)
    with _lock:
        records = _ensure_loaded()
        _explicit.append((name, plugin))
        record = BackendRecord(name=name, module=getattr(plugin, "__name__", repr(plugin)))
        records[name] = record
        _timed_load(record, plugin)
    from plugrad.core import device

    device.clear_cache()
    return record


def reset() -> None:
    """Forget every plugin so the next device resolution discovers again (for tests)."""
    global _records
    with _lock:
        _records = None
        _device_types.clear()
        _explicit.clear()
    from plugrad.core import device

    device.clear_cache()


def host_array(value: Any) -> np.ndarray:
    """A host copy of a device array of any registered type (used for repr and errors)."""
    if isinstance(value, np.ndarray):
        return value
    for device_type in _device_types.values():
        if device_type.array_types and isinstance(value, device_type.array_types):
            return device_type.to_host(value)
    return np.asarray(value)
