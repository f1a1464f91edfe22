"""The backend plugin contract: the pluggy hooks a backend implements, and what it may declare.

This module is plugrad's public, versioned interface to backends; ``docs/backends.md`` walks
through writing one. A backend is a Python distribution that names a light module in the
``plugrad.backends`` entry-point group. The first time a device is resolved (never at
``import plugrad``), plugrad imports that module, reads the API version it declares as data
(the module-level constant ``PLUGRAD_API_VERSION``), and if the version matches registers it
with its one ``pluggy.PluginManager`` and calls :func:`plugrad_register` once::

    # pyproject.toml of the plugin
    [project.entry-points."plugrad.backends"]
    ref = "plugrad_ref.plugin"

    # plugrad_ref/plugin.py
    from plugrad.hookspecs import DeviceType, hookimpl

    PLUGRAD_API_VERSION = 2  # the backend API this plugin is written for

    def namespace():
        import array_api_strict  # any Array API namespace; imported on first use

        return array_api_strict

    @hookimpl
    def plugrad_register(registry) -> None:
        registry.add_device_type(DeviceType(name="ref", namespace=namespace,
                                            dtypes=("float32", "int32", "bool")))

The namespace is the backend: plugrad's generic kernels (:mod:`plugrad.backends.generic`) supply
every primitive from it, and ``kernels`` only overrides. Hooks run once per process, never per
op: the kernels of a device type go into a plain dict that dispatch reads.

A :class:`DeviceType` validates itself when it is built: a wrong field raises
:class:`PluginError` naming the field, what was given and what is expected, the same whether
the DeviceType is built in a plugin, a test or at a prompt; plugrad adds the plugin's name
when the error comes out of ``plugrad_register``.

:class:`DeviceType` fields (see its docstring for details):

==================  ==========================================================================
``name``            device-string prefix (``"ref"`` gives ``ref0``, ``refx``); lowercase, unique
``namespace``       the Array API namespace, or a zero-argument callable returning it (lazy)
``dtypes``          dtype names, e.g. ``("float32", "int32", "bool")`` (the namespace's attributes
                    of those names), or a dict name -> the library's dtype object
``kernels``         op name -> kernel overriding a generic one, or a callable returning that dict
``to_host``         device array -> ``numpy.ndarray`` (default ``numpy.from_dlpack``)
``from_host``       ``(numpy.ndarray, device_index)`` -> device array (the array is plugrad's
                    fresh copy; the backend may keep it; default ``namespace.asarray``)
``array_types``     the backend's array classes; kernels must return instances of them
``is_available``    whether the devices can be used now (an exception's text is the reason not)
``device_count``    how many devices of this type exist
``priority``        ``xpux`` resolves to the available type with the highest priority (cpu: 0)
``synchronize``     ``(device_index) -> None``, waits for queued kernels
``inplace``         whether kernels may write into their input arrays (update ops may then
                    return their inputs, written); False for immutable arrays
``device_scope``    ``device_index -> context manager`` making that device current while a
                    creation kernel runs (backends that allocate on a "current" device)
``collectives``     optional ``(mpi_comm, device_index) -> communicator`` for
                    plugrad.distributed (docs/distributed.md); without it, the host path
==================  ==========================================================================

Versioning: :data:`API_VERSION` is the major version of this contract. It changes only when an
existing plugin would break (a hook or kernel signature changes meaning); new optional ops and
new DeviceType fields with defaults keep it. A plugin declares the version it is written for as
the literal module-level constant ``PLUGRAD_API_VERSION`` (not ``= API_VERSION``, which would
always match); plugrad refuses a plugin that declares another version, or none, and reports why
in ``plugrad info``. (A plugin written with the former ``plugrad_api_version`` hook is refused
with a message saying to write the constant instead.)
"""
from __future__ import annotations

from typing import Protocol

import pluggy

from plugrad.core.backend import API_VERSION, DeviceType, Kernel, KernelTable
from plugrad.core.plugins import PluginError

__all__ = [
    "API_VERSION", "DeviceType", "Kernel", "KernelTable", "PluginError", "PROJECT_NAME",
    "Registry", "hookimpl", "hookspec", "plugrad_register",
]

PROJECT_NAME = "plugrad"
#: Marks the hook specifications below (plugrad's side).
hookspec = pluggy.HookspecMarker(PROJECT_NAME)
#: Marks a plugin's hook implementations: ``@hookimpl def plugrad_register(registry): ...``.
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


class Registry(Protocol):
    """What :func:`plugrad_register` receives: the one call a plugin makes to declare devices."""

    def add_device_type(self, device_type: DeviceType) -> None:
        """Declare a device type.

        Raises :class:`PluginError` if the object is not a DeviceType or its name is taken by
        another backend (plugrad's own backends register first); a DeviceType's own fields were
        checked when it was built.
        """


@hookspec
def plugrad_register(registry: Registry) -> None:
    """Declare the plugin's device types by calling ``registry.add_device_type(DeviceType(...))``.

    Called once, after the version check (``PLUGRAD_API_VERSION``). Must not allocate device
    memory or import heavy libraries: availability is probed lazily through
    ``DeviceType.is_available`` and kernels are loaded on first use when ``DeviceType.kernels``
    is a callable. An exception raised here
    marks the plugin failed, with the exception as the reason.
    """
