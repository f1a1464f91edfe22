"""The backend and device under test, resolved once from ``--backend`` and ``--device``."""
from __future__ import annotations

import importlib
from dataclasses import dataclass

from plugrad.core import plugins, registry
from plugrad.core.backend import DeviceType
from plugrad.core.device import Device, get_device

__all__ = ["Target", "TargetError", "resolve", "load_plugin_modules"]


class TargetError(Exception):
    """The requested backend or device cannot be tested; the message says why and what exists."""


@dataclass(frozen=True)
class Target:
    """What the suite tests: one backend plugin and one of its devices."""

    backend: str
    source: str
    device: Device
    spec: str

    @property
    def device_type(self) -> DeviceType:
        return self.device.type

    @property
    def dtypes(self) -> tuple[str, ...]:
        return tuple(self.device_type.dtypes)

    @property
    def grad_dtype(self) -> str | None:
        """float64 when declared (finite differences are then exact to ~1e-9), else float32."""
        for dtype in ("float64", "float32"):
            if dtype in self.dtypes:
                return dtype
        return None

    @property
    def missing(self) -> list[str]:
        return registry.missing_primitives(self.device_type)

    def native(self, op: str) -> bool:
        return op in registry.dispatch_table(self.device_type)

    def describe(self) -> str:
        return (f"backend {self.backend!r} ({self.source}), device {self.device.logical} "
                f"(device type {self.device_type.name!r})")


def load_plugin_modules(modules: list[str]) -> None:
    """Register plugin modules by import path (a backend under development, not installed)."""
    for name in modules:
        try:
            module = importlib.import_module(name)
        except Exception as exc:
            raise TargetError(f"--plugin {name}: importing it failed: {type(exc).__name__}: "
                              f"{exc}") from exc
        record = plugins.register_plugin(module, name=name)
        if record.status != "loaded":
            raise TargetError(f"--plugin {name}: the plugin failed to load: {record.reason}")


def _choices() -> str:
    lines = []
    for record in plugins.backend_records():
        state = (f"device types {', '.join(record.device_types)}" if record.status == "loaded"
                 else f"failed: {record.reason}")
        lines.append(f"  {record.name} ({record.source}): {state}")
    return "\n".join(lines) or "  none (no plugin in the 'plugrad.backends' entry-point group)"


def resolve(backend: str, device: str | None = None) -> Target:
    """The :class:`Target` for a backend's entry-point name (or one of its device types)."""
    records = {r.name: r for r in plugins.backend_records()}
    record = records.get(backend)
    if record is None:
        owner = plugins.device_types().get(backend)
        record = records.get(owner.backend) if owner is not None else None
    if record is None:
        raise TargetError(f"--backend {backend!r}: no backend plugin of that name; installed "
                          f"backends:\n{_choices()}")
    if record.status != "loaded":
        raise TargetError(f"--backend {backend!r}: backend plugin {record.name!r} "
                          f"({record.source}) failed to load: {record.reason}")
    spec = device or f"{record.device_types[0]}0"
    try:
        resolved = get_device(spec)
    except (RuntimeError, ValueError, TypeError) as exc:
        raise TargetError(f"--device {spec!r}: {exc}") from exc
    if resolved.type.backend != record.name:
        raise TargetError(f"--device {spec!r} belongs to backend {resolved.type.backend!r}, not "
                          f"{record.name!r}; use one of its device types: "
                          f"{', '.join(record.device_types)}")
    return Target(record.name, record.source, resolved, spec)
