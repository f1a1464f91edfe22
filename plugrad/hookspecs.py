"""The backend plugin contract: the pluggy hooks a backend implements.

A backend is a Python package that names a light module in the ``plugrad.backends`` entry-point
group. plugrad imports that module the first time a device is resolved, checks the API version
it was built for, and then lets it register one or more device types::

    # pyproject.toml of the plugin
    [project.entry-points."plugrad.backends"]
    ref = "plugrad_ref.plugin"

    # plugrad_ref/plugin.py
    from plugrad.hookspecs import hookimpl, API_VERSION, DeviceType

    @hookimpl
    def plugrad_api_version():
        return API_VERSION

    @hookimpl
    def plugrad_register(registry):
        registry.add_device_type(DeviceType(name="ref", ...))

Hooks run once per process, never per op: the kernels a device type declares go into a plain dict.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

from plugrad.core.backend import API_VERSION, DeviceType

if TYPE_CHECKING:
    from plugrad.core.plugins import BackendRegistrar

__all__ = ["API_VERSION", "DeviceType", "hookimpl", "hookspec", "PROJECT_NAME"]

PROJECT_NAME = "plugrad"
hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@hookspec(firstresult=True)
def plugrad_api_version() -> int:
    """Return the major version of the backend API the plugin was written against.

    plugrad refuses a plugin whose major version differs from :data:`API_VERSION` and reports
    it in ``plugrad info`` instead of loading it.
    """


@hookspec
def plugrad_register(registry: BackendRegistrar) -> None:
    """Declare the plugin's device types by calling ``registry.add_device_type(DeviceType(...))``.

    Called once, after the version check. Must not allocate device memory: availability is
    probed lazily through ``DeviceType.is_available``.
    """
