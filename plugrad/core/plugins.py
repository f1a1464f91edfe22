"""Backend discovery: entry points and pluggy hooks, run once, lazily.

Nothing here runs at ``import plugrad``. The first device resolution calls :func:`device_types`,
which imports every plugin named in the ``plugrad.backends`` entry-point group, reads the API
version it declares (``PLUGRAD_API_VERSION``), registers it with the one plugin manager and
collects the device types it registers. A plugin that fails is recorded with its
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
import sys
import threading
import time
import traceback
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points
from types import ModuleType
from typing import Any, Iterator

import numpy as np
import pluggy

from plugrad.core.backend import API_VERSION, DeviceType, PluginError

__all__ = [
    "ENTRY_POINT_GROUP",
    "VERSION_ATTRIBUTE",
    "BackendRecord",
    "BackendRegistrar",
    "PluginError",
    "backend_records",
    "device_types",
    "plugin_manager",
    "register_plugin",
    "reset",
    "watch",
]

ENTRY_POINT_GROUP = "plugrad.backends"
#: The module-level constant a plugin declares its backend API version in.
VERSION_ATTRIBUTE = "PLUGRAD_API_VERSION"


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
    """Handed to ``plugrad_register``: collects one plugin's device types.

    A :class:`DeviceType` has validated itself when it was built; what is left to check here is
    what only the registry knows: that the prefix is free.
    """

    def __init__(self, taken: dict[str, DeviceType]):
        self._taken = taken
        self.added: list[DeviceType] = []

    def add_device_type(self, device_type: DeviceType) -> None:
        """Declare a device type; raises :class:`PluginError` on a duplicate or a non-DeviceType."""
        if not isinstance(device_type, DeviceType):
            raise PluginError(f"add_device_type: got {type(device_type).__name__}; expected a "
                              f"plugrad.hookspecs.DeviceType")
        name = device_type.name
        taken = self._taken.get(name) or next((d for d in self.added if d.name == name), None)
        if taken is not None:
            owner = f"{taken.backend!r} ({taken.source})" if taken.source else repr(taken.backend)
            raise PluginError(f"device type {name!r} is already registered by backend "
                              f"{owner}; pick another prefix for this plugin's devices")
        self.added.append(device_type)


_lock = threading.RLock()
_records: dict[str, BackendRecord] | None = None
_device_types: dict[str, DeviceType] = {}
_explicit: list[tuple[str, ModuleType | Any]] = []
_manager: pluggy.PluginManager | None = None


def plugin_manager() -> pluggy.PluginManager:
    """The one plugin manager holding every loaded backend plugin, built-in and third-party."""
    global _manager
    with _lock:
        if _manager is None:
            from plugrad import hookspecs

            _manager = pluggy.PluginManager(hookspecs.PROJECT_NAME)
            _manager.add_hookspecs(hookspecs)
        return _manager


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


def _version_problem(plugin: Any) -> str | None:
    """Why the plugin's declared API version (``PLUGRAD_API_VERSION``) rules it out, if it does."""
    version = getattr(plugin, VERSION_ATTRIBUTE, None)
    if version is None:
        if hasattr(plugin, "plugrad_api_version"):
            return (f"declares its API version with the plugrad_api_version hook, which plugrad "
                    f"no longer calls; replace the hook with a module-level constant "
                    f"'{VERSION_ATTRIBUTE} = {API_VERSION}'")
        return (f"declares no API version; add the module-level constant "
                f"'{VERSION_ATTRIBUTE} = {API_VERSION}' (the version the plugin is written for)")
    if not isinstance(version, int) or isinstance(version, bool):
        return f"{VERSION_ATTRIBUTE} is {version!r}; expected the int {API_VERSION}"
    if version != API_VERSION:
        return (f"built for backend API version {version}, but this plugrad speaks version "
                f"{API_VERSION}; install a release of the plugin for API {API_VERSION}")
    return None


def _load_plugin(record: BackendRecord, plugin: Any) -> None:
    """Check one plugin's API version, register it and collect its device types.

    Anything the plugin raises, SystemExit included, fails the plugin and nothing else; a failed
    plugin leaves the plugin manager as it found it.
    """
    problem = _version_problem(plugin)
    if problem is not None:
        record.status, record.reason = "failed", problem
        return
    pm = plugin_manager()
    # The same module loaded again (an entry point and register_plugin both naming it) stays
    # registered once; its device types then clash, and that is what gets reported.
    registered_here = pm.get_name(plugin) is None
    if registered_here and pm.get_plugin(record.name) is not None:
        record.status = "failed"
        record.reason = (f"another backend plugin is already loaded under the name "
                         f"{record.name!r}; register this one under another name")
        return
    if registered_here:
        try:
            pm.register(plugin, name=record.name)
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # pluggy validates the hook implementations here
            record.status = "failed"
            record.reason = f"invalid hook implementation: {_describe(exc)}"
            return
    who = f"{record.name!r} ({record.source})"
    registrar = BackendRegistrar(_device_types)
    register = pm.subset_hook_caller(
        "plugrad_register", remove_plugins=[p for p in pm.get_plugins() if p is not plugin])
    try:
        with watch(who, "plugrad_register()"):
            register(registry=registrar)
    except KeyboardInterrupt:
        if registered_here:
            pm.unregister(plugin)
        raise
    except PluginError as exc:  # a refused declaration: say whose it was
        record.status = "failed"
        record.reason = f"plugrad_register raised PluginError: backend plugin {who}: {exc}"
    except BaseException as exc:
        record.status, record.reason = "failed", f"plugrad_register raised {_describe(exc)}"
    else:
        if registrar.added:
            record.status = "loaded"
        else:
            record.status, record.reason = "failed", "registered no device type"
    if record.status != "loaded":
        if registered_here:
            pm.unregister(plugin)
        return
    for device_type in registrar.added:
        device_type.backend, device_type.source = record.name, record.source
        _device_types[device_type.name] = device_type
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
    name = name or str(getattr(plugin, "__name__", type(plugin).__name__))
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
    global _records, _manager
    with _lock:
        _records = None
        _manager = None
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
