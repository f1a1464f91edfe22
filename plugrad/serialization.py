"""``plugrad.save`` / ``plugrad.load``: state dicts in a safe, non-executable container.

A file is a zip archive holding ``manifest.json`` (the object tree: dicts, lists, tuples,
numbers, strings, and references to arrays) and one NumPy ``.npy`` entry per array or tensor.
Loading it runs no code from the file. Objects outside that vocabulary are pickled only when the
caller opts in when saving (``allow_pickle=True`` or a ``pickle_protocol``), and a file holding
pickles is refused by :func:`load` unless it is called with ``allow_pickle=True``.

Saving to a path is atomic: the archive is written to a temporary file in the same folder,
flushed and fsynced, then renamed over the target with ``os.replace``, so a crash mid-save
leaves the previous file intact.
"""
from __future__ import annotations

import contextlib
import io
import json
import os
import pickle
import tempfile
import zipfile
from collections import OrderedDict
from typing import Any, BinaryIO, Callable, Union

import numpy as np

from plugrad.core.device import get_device
from plugrad.core.tensor import Parameter, Tensor

__all__ = ["save", "load", "CorruptFileError", "PickleNotAllowedError"]

FORMAT = "plugrad"
VERSION = 1
_MANIFEST = "manifest.json"

PathOrFile = Union[str, os.PathLike, BinaryIO]
MapLocation = Union[None, str, dict, Callable[[str], str]]


class CorruptFileError(ValueError):
    """The file is not a plugrad archive, or it is truncated or damaged."""


class PickleNotAllowedError(ValueError):
    """Pickled objects were met where the caller did not allow pickle."""


# -- saving ---------------------------------------------------------------------------------
class _Writer:
    """Turns an object tree into JSON plus array entries, written straight into the zip."""

    def __init__(self, archive: zipfile.ZipFile, pickle_protocol: int | None):
        self.archive = archive
        self.pickle_protocol = pickle_protocol
        self.seen: dict[int, str] = {}  # id(tensor or array) -> entry, so sharing survives
        self.keep_alive: list[Any] = []
        self.count = 0
        self.pickles: list[str] = []

    def _entry(self, folder: str, suffix: str) -> str:
        self.count += 1
        return f"{folder}/{self.count}{suffix}"

    def _array(self, source: Any, array: np.ndarray) -> str:
        entry = self.seen.get(id(source))
        if entry is None:
            entry = self._entry("arrays", ".npy")
            with self.archive.open(entry, "w", force_zip64=array.nbytes > 1 << 30) as handle:
                np.lib.format.write_array(handle, np.asarray(array), allow_pickle=False)
            self.seen[id(source)] = entry
            self.keep_alive.append(source)
        return entry

    def encode(self, obj: Any, where: str) -> Any:
        if isinstance(obj, np.generic) and obj.dtype.kind in "biufc":  # before float: float64
            return {"type": "npscalar", "array": self._array(obj, np.asarray(obj))}
        if obj is None or isinstance(obj, (bool, str)):
            return obj
        if isinstance(obj, int) and not isinstance(obj, np.integer):
            return obj
        if isinstance(obj, float):
            return obj if np.isfinite(obj) else {"type": "float", "value": repr(obj)}
        if isinstance(obj, Tensor):
            return {"type": "tensor", "class": "Parameter" if isinstance(obj, Parameter)
                    else "Tensor", "device": obj.device.logical,
                    "array": self._array(obj, obj.numpy())}
        if isinstance(obj, np.ndarray) and obj.dtype.kind in "biufc":
            return {"type": "ndarray", "array": self._array(obj, obj)}
        if isinstance(obj, (bytes, bytearray)):
            return {"type": "bytes", "array": self._array(obj, np.frombuffer(obj, np.uint8))}
        if type(obj) in (dict, OrderedDict):
            return {"type": "odict" if isinstance(obj, OrderedDict) else "dict",
                    "items": [[self.encode(k, f"{where} key"), self.encode(v, f"{where}[{k!r}]")]
                              for k, v in obj.items()]}
        if type(obj) in (list, tuple):
            return {"type": type(obj).__name__,
                    "items": [self.encode(v, f"{where}[{i}]") for i, v in enumerate(obj)]}
        return self._pickle(obj, where)

    def _pickle(self, obj: Any, where: str) -> Any:
        if self.pickle_protocol is None:
            raise PickleNotAllowedError(
                f"save: {where} is a {type(obj).__name__}, which the safe format cannot store "
                f"(it holds Tensors, NumPy arrays, numbers, strings, bytes, and dicts / lists / "
                f"tuples of them); pass allow_pickle=True (or a pickle_protocol) to pickle it, "
                f"and load the file with allow_pickle=True")
        entry = self._entry("pickles", ".pkl")
        self.archive.writestr(entry, pickle.dumps(obj, protocol=self.pickle_protocol))
        self.pickles.append(entry)
        return {"type": "pickle", "entry": entry}


def _write_archive(obj: Any, handle: BinaryIO, pickle_protocol: int | None) -> None:
    with zipfile.ZipFile(handle, "w", compression=zipfile.ZIP_STORED) as archive:
        writer = _Writer(archive, pickle_protocol)
        root = writer.encode(obj, "obj")
        manifest = {"format": FORMAT, "version": VERSION, "pickles": writer.pickles,
                    "root": root}
        archive.writestr(_MANIFEST, json.dumps(manifest))


def save(obj: Any, f: PathOrFile, pickle_protocol: int | None = None,
         allow_pickle: bool = False) -> None:
    """Save ``obj`` (e.g. ``model.state_dict()`` or ``optimizer.state_dict()``) to ``f``.

    Args:
        obj: Tensors, NumPy arrays and scalars, numbers, strings, bytes, and dicts
            (OrderedDicts), lists and tuples of them, nested freely.
        f: a path (written atomically) or a binary file object open for writing.
        pickle_protocol: pickle other objects with this protocol (opts in to pickle).
        allow_pickle: pickle other objects with the default protocol.

    Example:
        >>> plugrad.save(model.state_dict(), "lenet.pkg")
        >>> model.load_state_dict(plugrad.load("lenet.pkg"))
    """
    if pickle_protocol is None and allow_pickle:
        pickle_protocol = pickle.DEFAULT_PROTOCOL
    if not isinstance(f, (str, os.PathLike)):
        if not hasattr(f, "write"):
            raise TypeError(f"save: f must be a path or a binary file object; got "
                            f"{type(f).__name__}")
        _write_archive(obj, f, pickle_protocol)
        return
    path = os.fspath(f)
    folder = os.path.dirname(os.path.abspath(path))
    fd, temp = tempfile.mkstemp(dir=folder, prefix=f".{os.path.basename(path)}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            _write_archive(obj, handle, pickle_protocol)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
    _fsync_folder(folder)


def _fsync_folder(folder: str) -> None:
    """Make the rename durable too (best effort: not every platform can open a folder)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):  # not every file system syncs directories
            os.fsync(fd)
    finally:
        os.close(fd)


# -- loading --------------------------------------------------------------------------------
def _device_resolver(map_location: MapLocation) -> Callable[[str], Any]:
    if map_location is None:
        return lambda saved: saved
    if isinstance(map_location, str):
        return lambda saved: map_location
    if isinstance(map_location, dict):
        def lookup(saved: str) -> str:
            bare = saved.split(":")[0]
            return map_location.get(saved, map_location.get(bare, saved))
        return lookup
    if callable(map_location):
        return map_location
    raise TypeError(f"load: map_location must be None, a device string, a dict or a callable; "
                    f"got {type(map_location).__name__}")


class _Reader:
    def __init__(self, archive: zipfile.ZipFile, name: str, map_location: MapLocation,
                 allow_pickle: bool):
        self.archive = archive
        self.name = name
        self.device_for = _device_resolver(map_location)
        self.allow_pickle = allow_pickle
        self.cache: dict[str, Any] = {}

    def _array(self, entry: str) -> np.ndarray:
        with self.archive.open(entry) as handle:
            return np.lib.format.read_array(io.BytesIO(handle.read()), allow_pickle=False)

    def _tensor(self, node: dict) -> Tensor:
        array = self._array(node["array"])
        saved = node.get("device", "xpux")
        target = self.device_for(saved)
        try:
            device = get_device(target)
        except (RuntimeError, ValueError) as exc:
            raise RuntimeError(f"load: {self.name} holds a tensor saved on {saved!r}, which "
                               f"cannot be used here ({exc}); pass map_location, e.g. "
                               f"map_location='cpux'") from exc
        cls = Parameter if node.get("class") == "Parameter" else Tensor
        return cls(array, dtype=array.dtype, device=device)

    def decode(self, node: Any) -> Any:
        if not isinstance(node, dict):
            return node
        kind = node["type"]
        if kind in ("tensor", "ndarray", "npscalar", "bytes"):
            key = f"{kind}:{node['array']}"
            if key not in self.cache:
                if kind == "tensor":
                    value = self._tensor(node)
                else:
                    array = self._array(node["array"])
                    value = array if kind == "ndarray" else array[()] if kind == "npscalar" \
                        else array.tobytes()
                self.cache[key] = value
            return self.cache[key]
        if kind == "float":
            return float(node["value"])
        if kind in ("dict", "odict"):
            pairs = [(self._key(k), self.decode(v)) for k, v in node["items"]]
            return OrderedDict(pairs) if kind == "odict" else dict(pairs)
        if kind in ("list", "tuple"):
            items = [self.decode(v) for v in node["items"]]
            return items if kind == "list" else tuple(items)
        if kind == "pickle":
            with self.archive.open(node["entry"]) as handle:
                return pickle.loads(handle.read())
        raise CorruptFileError(f"load: {self.name} has an entry of unknown type {kind!r}")

    def _key(self, node: Any) -> Any:
        key = self.decode(node)
        return tuple(key) if isinstance(key, list) else key


def _open_archive(f: PathOrFile) -> tuple[zipfile.ZipFile, str]:
    if isinstance(f, (str, os.PathLike)):
        name, source = repr(os.fspath(f)), os.fspath(f)  # a missing file raises as usual
    else:
        name = repr(getattr(f, "name", f"<{type(f).__name__}>"))
        source = f if f.seekable() else io.BytesIO(f.read())
    try:
        return zipfile.ZipFile(source), name
    except (zipfile.BadZipFile, EOFError) as exc:
        raise CorruptFileError(f"load: {name} is not a plugrad file, or it is truncated or "
                               f"corrupt ({exc}); it was not written by plugrad.save, or the "
                               f"write was cut short") from exc


def load(f: PathOrFile, map_location: MapLocation = None, allow_pickle: bool = False) -> Any:
    """Load an object saved by :func:`save`.

    Args:
        f: a path or a binary file object.
        map_location: where tensors go: None (the device each was saved from), a device
            string for all of them (``"cpux"``), a dict from saved to target devices
            (``{"gpu0": "cpu0"}``), or a callable ``saved_device -> device``.
        allow_pickle: allow unpickling objects saved with pickle. Unpickling can run
            arbitrary code: only pass True for files you trust.

    Raises:
        CorruptFileError: the file is truncated, damaged or not a plugrad file.
        PickleNotAllowedError: the file holds pickled objects and ``allow_pickle`` is False.
    """
    archive, name = _open_archive(f)
    with archive:
        try:
            manifest = json.loads(archive.read(_MANIFEST))
            if manifest.get("format") != FORMAT:
                raise ValueError(f"format {manifest.get('format')!r}")
            if manifest.get("version", 0) > VERSION:
                raise ValueError(f"version {manifest['version']} is newer than this plugrad's "
                                 f"{VERSION}; upgrade plugrad")
            if manifest["pickles"] and not allow_pickle:
                raise PickleNotAllowedError(
                    f"load: {name} holds {len(manifest['pickles'])} pickled Python object(s); "
                    f"unpickling can run arbitrary code, so it is refused by default. If you "
                    f"trust the file, call plugrad.load(..., allow_pickle=True)")
            return _Reader(archive, name, map_location, allow_pickle).decode(manifest["root"])
        except (PickleNotAllowedError, CorruptFileError):
            raise
        except (KeyError, ValueError, zipfile.BadZipFile, EOFError) as exc:
            raise CorruptFileError(f"load: {name} is truncated or corrupt, or not a plugrad "
                                   f"file ({type(exc).__name__}: {exc})") from exc
