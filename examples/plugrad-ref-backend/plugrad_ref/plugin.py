"""Entry point of the ref backend: the two plugrad hooks, and nothing heavy at import."""
from __future__ import annotations

import numpy as np

from plugrad.hookspecs import API_VERSION, DeviceType, Registry, hookimpl

#: dtypes the kernels support; plugrad refuses the others on ref devices with a clear message.
DTYPES = ("bool", "uint8", "int32", "float32", "float64")
#: ref devices are simulated in host memory; two of them exercise cross-device code paths.
DEVICE_COUNT = 2


def _kernels() -> dict:
    # Imported on first use of a ref device, not when plugrad discovers the plugin.
    from plugrad_ref.kernels import KERNELS

    return KERNELS


def _to_host(array: np.ndarray) -> np.ndarray:
    return array


def _from_host(array: np.ndarray, index: int) -> np.ndarray:
    # plugrad hands over a fresh array it no longer uses, so it can be kept as is.
    return array


@hookimpl
def plugrad_api_version() -> int:
    return API_VERSION


@hookimpl
def plugrad_register(registry: Registry) -> None:
    registry.add_device_type(DeviceType(
        name="ref",
        kernels=_kernels,
        dtypes=DTYPES,
        to_host=_to_host,
        from_host=_from_host,
        array_types=(np.ndarray,),
        device_count=lambda: DEVICE_COUNT,
        # Below cpu's 0: xpux picks ref only when it is the sole backend allowed.
        priority=-1,
    ))
