"""What a backend declares: a device type with its kernels, dtypes and host transfers."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, ContextManager, Mapping, Union

import numpy as np

__all__ = ["API_VERSION", "DeviceType", "Kernel", "KernelTable"]

#: Major version of the backend plugin API. Plugins built for another major are refused.
API_VERSION = 1

Kernel = Callable[..., Any]
KernelTable = Mapping[str, Kernel]


def _always_available() -> bool:
    return True


def _one_device() -> int:
    return 1


@dataclass(eq=False)
class DeviceType:
    """A kind of device a backend runs kernels on (``cpu``, ``gpu``, or a plugin's own prefix).

    Args:
        name: the device-string prefix users type (``"gpu"`` for ``gpu0``); lowercase letters.
        kernels: op name -> kernel, or a zero-argument callable returning that mapping, called
            the first time the device type is used (so heavy imports stay lazy). A kernel takes
            raw arrays positionally and the op's attributes as keywords, and returns a new array.
        dtypes: the dtype names the kernels support (``"float32"``, ``"int32"``, ``"bool"``...).
        to_host: device array -> ``numpy.ndarray`` (may return a view for host memory).
        from_host: ``(numpy.ndarray, device_index) -> device array``; plugrad hands it a fresh
            array it no longer uses, so the backend may keep it without copying.
        array_types: the backend's array classes, so ``Tensor(array)`` accepts them directly.
            Read when used, not at registration: a plugin that keeps its array library unimported
            may leave it empty and fill it in when ``is_available`` first succeeds.
        is_available: whether a device of this type can be used now; may raise, and the
            exception's message is reported as the reason it is unavailable.
        device_count: how many devices of this type exist.
        priority: ``xpux`` resolves to the available type with the highest priority.
        synchronize: waits for queued kernels (for timing); a no-op for synchronous backends.
        inplace: whether kernels may write into their input arrays. Update ops (optimizer
            steps) then may return their inputs written in place; a library whose arrays are
            immutable (JAX) leaves it False and its kernels return new arrays, which plugrad
            stores into the parameters.
        device_scope: ``index -> context manager`` that makes device ``index`` current while a
            creation kernel (``full``, ``uniform``...) runs, for backends that allocate on a
            "current" device; those kernels have no input array to take the device from.
            ``None`` (the default) for backends with one device or explicit placement.
    """

    name: str
    kernels: KernelTable | Callable[[], KernelTable]
    dtypes: tuple[str, ...]
    to_host: Callable[[Any], np.ndarray]
    from_host: Callable[[np.ndarray, int], Any]
    array_types: tuple[type, ...] = ()
    is_available: Callable[[], bool] = _always_available
    device_count: Callable[[], int] = _one_device
    priority: int = 0
    synchronize: Callable[[int], None] = field(default=lambda index: None)
    inplace: bool = False
    device_scope: Callable[[int], ContextManager[Any]] | None = None
    # Filled in by plugrad when the plugin registers; not for plugins to set.
    backend: str = ""
    #: The plugin's distribution and version (``"plugrad-ref-backend 0.1.0"``), for messages.
    source: str = ""

    def load_kernels(self) -> dict[str, Kernel]:
        table = self.kernels() if callable(self.kernels) else self.kernels
        return dict(table)


KernelSource = Union[KernelTable, Callable[[], KernelTable]]
