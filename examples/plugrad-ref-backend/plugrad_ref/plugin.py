"""The ref backend: plugrad on array_api_strict, the Array API standard's strict reference
implementation, which rejects anything outside the standard.

The namespace is the whole backend: plugrad's generic kernels supply every primitive from it,
and composite ops (relu, softmax, conv2d...) run through their decompositions. Nothing heavy
happens at import: array_api_strict is imported the first time a ref device is used.
"""
from __future__ import annotations

from types import ModuleType

from plugrad.hookspecs import DeviceType, Registry, hookimpl

#: The standard's dtypes that plugrad uses (it has no float16); each is the namespace's own
#: dtype object of that name (``array_api_strict.float32``...).
DTYPES = ("bool", "int8", "uint8", "int16", "int32", "float32", "float64")
#: Two ref devices, both in host memory, exercise plugrad's cross-device code paths.
DEVICE_COUNT = 2


def _namespace() -> ModuleType:
    import array_api_strict

    return array_api_strict


#: The backend API this plugin is written for; plugrad refuses the plugin if it speaks another.
PLUGRAD_API_VERSION = 2


@hookimpl
def plugrad_register(registry: Registry) -> None:
    registry.add_device_type(DeviceType(
        name="ref",
        namespace=_namespace,
        dtypes=DTYPES,
        device_count=lambda: DEVICE_COUNT,
        # Below cpu's 0: xpux picks ref only when it is the sole backend allowed.
        priority=-1,
    ))
