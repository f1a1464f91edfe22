"""What a backend declares: an Array API namespace, its dtypes, kernel overrides, host transfers."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, Callable, ContextManager, Mapping

import numpy as np

__all__ = ["API_VERSION", "DeviceType", "Kernel", "KernelTable", "PluginError"]

#: Major version of the backend plugin API. Plugins built for another major are refused.
#: 2: a device type is an Array API namespace plus overrides; ``dtype=`` attributes are the
#: namespace's dtype objects; update ops.
API_VERSION = 2


class PluginError(Exception):
    """A backend plugin declared something plugrad cannot use."""


_NAME_RE = re.compile(r"^[a-z][a-z_]*$")
_RESERVED_NAMES = frozenset({"xpu"})
KNOWN_DTYPES = frozenset({
    "bool", "int8", "uint8", "int16", "int32", "int64",
    "float16", "float32", "float64", "bfloat16",
})
_CALLABLES = ("to_host", "from_host", "is_available", "device_count", "synchronize")
_OPTIONAL_CALLABLES = ("device_scope", "collectives")

Kernel = Callable[..., Any]
KernelTable = Mapping[str, Kernel]


def _always_available() -> bool:
    return True


def _one_device() -> int:
    return 1


@dataclass(eq=False)
class DeviceType:
    """A kind of device a backend runs kernels on (``cpu``, ``gpu``, or a plugin's own prefix).

    A backend is an array namespace that follows the Python Array API standard plus what
    plugrad cannot learn from it; plugrad's generic kernels (:mod:`plugrad.backends.generic`)
    supply every primitive from the namespace, and ``kernels`` overrides any of them.

    Every field is checked when the DeviceType is built: a wrong one raises :class:`PluginError`
    naming the field, what was given and what is expected.

    Args:
        name: the device-string prefix users type (``"gpu"`` for ``gpu0``); lowercase letters.
        namespace: the Array API namespace (``array_api_strict``, ``numpy``,
            ``array_api_compat.torch``...), or a zero-argument callable returning it, called
            the first time the device type is used (so heavy imports stay lazy). ``None`` for a
            backend that brings every primitive in ``kernels`` (its dtype names then mean NumPy
            dtypes).
        dtypes: plugrad's dtype names the backend supports (``"float32"``, ``"int32"``,
            ``"bool"``...), or a mapping from those names to the namespace's dtype objects. A
            tuple of names means ``getattr(namespace, name)``; a library whose arrays report
            NumPy dtypes (NumPy, CuPy, JAX) maps names to ``numpy.dtype(name)``.
        kernels: op name -> kernel, or a zero-argument callable returning that mapping (lazy):
            overrides of the generic kernels, fused ops, or every kernel without a namespace.
            A kernel takes raw arrays positionally and the op's attributes as keywords, and
            returns a new array (update ops: a tuple of them). A ``dtype=`` attribute is always
            the namespace's own dtype object, from the ``dtypes`` table.
        to_host: device array -> ``numpy.ndarray`` (may return a view for host memory); by
            default ``numpy.from_dlpack``.
        from_host: ``(numpy.ndarray, device_index) -> device array``; plugrad hands it a fresh
            array it no longer uses, so the backend may keep it without copying; by default
            ``namespace.asarray``.
        array_types: the backend's array classes, so ``Tensor(array)`` accepts them directly.
            Read when used, not at registration: a plugin that keeps its array library unimported
            may leave it empty and fill it in when ``is_available`` first succeeds; with a
            namespace, plugrad fills it from ``namespace.asarray(0)`` when kernels load.
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
        collectives: optional ``(mpi_comm, device_index) -> communicator`` for data-parallel
            training: the communicator all-reduces, broadcasts, gathers and reduce-scatters
            this type's arrays across the processes of ``mpi_comm`` (an mpi4py communicator,
            the bootstrap: NCCL shares its unique id over it). ``None``, or a factory that
            returns ``None`` for a group it cannot serve: plugrad.distributed moves the
            arrays through the host (``to_host``, MPI, ``from_host``).
            docs/distributed.md gives the communicator's methods.
    """

    name: str
    namespace: ModuleType | Callable[[], ModuleType] | None = None
    dtypes: tuple[str, ...] | Mapping[str, Any] = ()
    kernels: KernelTable | Callable[[], KernelTable] = field(default_factory=dict)
    # ``None`` is only the constructor's "not given": __post_init__ puts the namespace's default
    # in its place or _validate refuses it, so a built DeviceType always has both callables.
    to_host: Callable[[Any], np.ndarray] = None  # type: ignore[assignment]  # see above
    from_host: Callable[[np.ndarray, int], Any] = None  # type: ignore[assignment]  # see above
    array_types: tuple[type, ...] = ()
    is_available: Callable[[], bool] = _always_available
    device_count: Callable[[], int] = _one_device
    priority: int = 0
    synchronize: Callable[[int], None] = field(default=lambda index: None)
    inplace: bool = False
    device_scope: Callable[[int], ContextManager[Any]] | None = None
    collectives: Callable[[Any, int], Any] | None = None
    # Filled in by plugrad when the plugin registers; not for plugins to set.
    backend: str = ""
    #: The plugin's distribution and version (``"plugrad-ref-backend 0.1.0"``), for messages.
    source: str = ""

    def __post_init__(self) -> None:
        if self.to_host is None and self.namespace is not None:
            self.to_host = np.from_dlpack
        if self.from_host is None and self.namespace is not None:
            self.from_host = self._asarray
        self._validate()

    def _refuse(self, field_name: str, given: Any, expected: str) -> PluginError:
        return PluginError(f"DeviceType {self.name!r}: {field_name}: got {given!r}; "
                           f"expected {expected}")

    def _validate(self) -> None:
        """Refuse a declaration plugrad cannot use, naming the field, the value and the fix.

        Runs when the device type is built, so a mistake reads the same in a plugin, in a test
        or at a prompt; the plugin layer prefixes the plugin's name.
        """
        name = self.name
        if not isinstance(name, str) or not _NAME_RE.match(name) or name in _RESERVED_NAMES:
            raise PluginError(f"DeviceType: name: got {name!r}; expected lowercase letters and "
                              f"underscores, not 'xpu' (e.g. 'ref')")
        dtypes = self.dtypes
        names = list(dtypes) if isinstance(dtypes, (tuple, list, Mapping)) else None
        if names is None or not all(isinstance(d, str) for d in names):
            raise self._refuse("dtypes", dtypes, "a tuple of dtype names such as "
                               "('float32', 'int32'), or a dict name -> the library's dtype")
        unknown = [d for d in names if d not in KNOWN_DTYPES]
        if not names or unknown:
            raise self._refuse("dtypes", dtypes, f"names among {sorted(KNOWN_DTYPES)}"
                               + (f" (unknown: {unknown})" if unknown else ""))
        for attr in _CALLABLES:
            value = getattr(self, attr)
            if not callable(value):
                hint = " (required when there is no namespace)" if value is None else ""
                raise self._refuse(attr, value, f"a callable{hint}")
        for attr in _OPTIONAL_CALLABLES:
            value = getattr(self, attr)
            if value is not None and not callable(value):
                raise self._refuse(attr, value, "a callable or None")
        if not (callable(self.kernels) or isinstance(self.kernels, Mapping)):
            raise self._refuse("kernels", self.kernels,
                               "a dict op name -> kernel, or a callable returning one")
        kinds = self.array_types
        if not isinstance(kinds, tuple) or not all(isinstance(k, type) for k in kinds):
            raise self._refuse("array_types", kinds, "a tuple of classes such as (numpy.ndarray,)")
        if not isinstance(self.priority, int) or isinstance(self.priority, bool):
            raise self._refuse("priority", self.priority, "an int")
        if not isinstance(self.inplace, bool):
            raise self._refuse("inplace", self.inplace, "True or False")
        namespace = self.namespace
        if namespace is not None and not callable(namespace) and not isinstance(namespace,
                                                                                 ModuleType):
            raise self._refuse("namespace", namespace,
                               "an Array API module, a callable returning one, or None")
        if isinstance(namespace, ModuleType):  # a lazy one is checked when its kernels load
            from plugrad.backends.generic import missing_functions

            missing = missing_functions(namespace)
            if missing:
                raise self._refuse("namespace", namespace.__name__,
                                   f"an Array API namespace; it lacks {', '.join(missing)}, "
                                   f"which plugrad's generic kernels call (array_api_compat "
                                   f"wraps most libraries)")

    def _asarray(self, array: np.ndarray, index: int) -> Any:
        return self.array_namespace().asarray(array)

    def array_namespace(self) -> Any:
        """The namespace, imported on first use when it was given as a callable."""
        namespace = self.namespace
        if callable(namespace) and not isinstance(namespace, ModuleType):
            namespace = self.namespace = namespace()
        return namespace

    def dtype_names(self) -> list[str]:
        return list(self.dtypes)

    def dtype_table(self) -> dict[np.dtype, Any]:
        """plugrad's dtype (a ``numpy.dtype``) -> the namespace's dtype object."""
        if isinstance(self.dtypes, Mapping):
            return {np.dtype(name): native for name, native in self.dtypes.items()}
        namespace = self.array_namespace()
        return {np.dtype(name): getattr(namespace, name) if namespace is not None
                else np.dtype(name) for name in self.dtypes}

    def load_kernels(self) -> dict[str, Kernel]:
        """The generic kernels over the namespace, with the backend's own kernels over them."""
        table: dict[str, Kernel] = {}
        namespace = self.array_namespace()
        if namespace is not None:
            from plugrad.backends import generic

            missing = generic.missing_functions(namespace)
            if missing:
                raise PluginError(
                    f"the array namespace {getattr(namespace, '__name__', namespace)!r} lacks "
                    f"{', '.join(missing)}, which plugrad's generic kernels call; give a "
                    f"namespace that follows the Array API standard (wrap the library with "
                    f"array_api_compat), or add them to it")
            host_names = {native: name for name, native in self.dtype_table().items()}
            table.update(generic.kernel_table(namespace, lambda native: host_names[native]))
            if not self.array_types:
                self.array_types = (type(namespace.asarray(0)),)
        table.update(self.kernels() if callable(self.kernels) else self.kernels)
        return table


KernelSource = KernelTable | Callable[[], KernelTable]
