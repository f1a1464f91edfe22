"""``plugrad.save`` / ``plugrad.load``: checkpoints that run no code when read.

Formats
-------
``plugrad.save`` writes one of two formats; ``plugrad.load`` reads three, told apart by their
first bytes (not by the file name):

* **plugrad archive** (the default): an uncompressed zip holding ``manifest.json`` (the object
  tree: dicts, OrderedDicts, lists, tuples, numbers, strings, bytes, and references to arrays)
  and one NumPy ``.npy`` entry per array or tensor. Objects outside that vocabulary are pickled
  into ``pickles/`` entries only when the caller opts in when saving (``allow_pickle=True`` or
  a ``pickle_protocol``).
* **safetensors**, for a path ending in ``.safetensors``: the flat name -> array format PyTorch
  and Hugging Face tools exchange weights in, so a state dict moves both ways. Needs the
  ``safetensors`` extra (``pip install 'plugrad[safetensors]'``); only flat dicts of Tensors or
  arrays fit. Loading gives a dict of NumPy arrays.
* **plain pickle** (read only, protocol 2 or later): what ``megengine.save`` and
  ``pickle.dump`` write, loaded only with ``allow_pickle=True``. MegEngine's state dicts map
  names to NumPy arrays, so
  ``model.load_state_dict(plugrad.load("megengine.pkl", allow_pickle=True))`` migrates weights.

Safety
------
Unpickling can run any code the file holds, so :func:`load` never unpickles without
``allow_pickle=True``: the pickle nodes of an archive's object tree are found by walking the
tree itself (the manifest's own ``pickles`` list is not trusted), and a plain pickle file is
refused up front. Every other part of a file is data: the manifest's structure is checked (node
types, field types, nesting depth) and each array's header (dtype, shape) against the size of
the zip entry holding it before anything is allocated, so a crafted file raises
:class:`CorruptFileError` naming it and what is wrong, and never allocates more than the file
holds.

Saving to a path is atomic (``plugrad._atomic_file``): the file is written beside the target,
fsynced and renamed over it, so a crash or a kill mid-save leaves the previous file intact; the
temporary file a killed save leaves behind is removed by the next save of the same target. New
files get the usual permissions (0o666 less the umask).
"""
from __future__ import annotations

import io
import json
import math
import os
import pickle
import zipfile
from collections import OrderedDict
from typing import IO, Any, BinaryIO, Callable

import numpy as np

from plugrad import _safetensors
from plugrad._atomic_file import write_atomically
from plugrad.core.device import get_device
from plugrad.core.tensor import Parameter, Tensor

__all__ = ["save", "load", "CorruptFileError", "PickleNotAllowedError"]

FORMAT = "plugrad"
VERSION = 1
_MANIFEST = "manifest.json"
#: Deepest object tree a file may hold (state dicts are a few levels deep).
MAX_DEPTH = 100
_ARRAY_KINDS = "biufc"  # bool, ints, floats, complex: all the writer stores as arrays
_READ_CHUNK = 1 << 24
_ARRAY_NODES = ("tensor", "ndarray", "npscalar", "bytes")  # object nodes backed by an array

PathOrFile = str | os.PathLike | BinaryIO
MapLocation = None | str | dict | Callable[[str], str]


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
            (OrderedDicts), lists and tuples of them, nested freely. For a ``.safetensors``
            path: a flat dict of names to Tensors or arrays.
        f: a path (written atomically) or a binary file object open for writing.
        pickle_protocol: pickle other objects with this protocol (opts in to pickle).
        allow_pickle: pickle other objects with the default protocol.

    Example:
        >>> plugrad.save(model.state_dict(), "lenet.pkg")
        >>> model.load_state_dict(plugrad.load("lenet.pkg"))
        >>> plugrad.save(model.state_dict(), "lenet.safetensors")  # for PyTorch / HF tools
    """
    if pickle_protocol is None and allow_pickle:
        pickle_protocol = pickle.DEFAULT_PROTOCOL
    if not isinstance(f, (str, os.PathLike)):
        if not hasattr(f, "write"):
            raise TypeError(f"save: f must be a path or a binary file object; got "
                            f"{type(f).__name__}")
        _write_archive(obj, f, pickle_protocol)
        return
    if os.fspath(f).endswith(_safetensors.SUFFIX):
        data = _safetensors.encode(obj, repr(os.fspath(f)))  # errors before any file exists
        write_atomically(f, lambda handle: handle.write(data))
    else:
        write_atomically(f, lambda handle: _write_archive(obj, handle, pickle_protocol))


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


def _corrupt(name: str, what: str) -> CorruptFileError:
    return CorruptFileError(f"load: {name} is corrupt or not a plugrad file: {what}")


class _TreeCheck:
    """Checks a manifest's object tree before anything is read: node types, field types and
    nesting depth; collects the pickle entries the tree really holds."""

    def __init__(self, archive: zipfile.ZipFile, name: str):
        self.entries = set(archive.namelist())
        self.name = name
        self.pickles: list[str] = []

    def node(self, node: Any, where: str, depth: int = 0) -> None:
        if node is None or isinstance(node, (bool, int, float, str)):
            return
        if depth >= MAX_DEPTH:
            raise _corrupt(self.name, f"{where} is nested more than {MAX_DEPTH} levels deep")
        if not isinstance(node, dict):
            raise _corrupt(self.name, f"{where} is a JSON {type(node).__name__}; expected a "
                                      f"number, string, null or an object node")
        kind = node.get("type")
        if kind in _ARRAY_NODES:
            self._entry(node, "array", where)
            if kind == "tensor" and not all(isinstance(node.get(field, ""), str)
                                            for field in ("device", "class")):
                raise _corrupt(self.name, f"{where}: a tensor's device and class must be "
                                          f"strings")
        elif kind == "pickle":
            self.pickles.append(self._entry(node, "entry", where))
        elif kind == "float":
            value: Any = node.get("value")  # untrusted JSON: float() itself is the check
            try:
                float(value)
            except (TypeError, ValueError):
                raise _corrupt(self.name, f"{where}: float value {value!r} is not a number "
                                          f"string") from None
        elif kind in ("dict", "odict", "list", "tuple"):
            items = node.get("items")
            if not isinstance(items, list):
                raise _corrupt(self.name, f"{where}: a {kind} node's items are not a list")
            for i, item in enumerate(items):
                if kind in ("dict", "odict"):
                    if not (isinstance(item, list) and len(item) == 2):
                        raise _corrupt(self.name, f"{where}: item {i} of a {kind} is not a "
                                                  f"[key, value] pair")
                    self.node(item[0], f"{where} key {i}", depth + 1)
                    self.node(item[1], f"{where}[{i}]", depth + 1)
                else:
                    self.node(item, f"{where}[{i}]", depth + 1)
        else:
            raise _corrupt(self.name, f"{where} has an entry of unknown type {kind!r}")

    def _entry(self, node: dict, field: str, where: str) -> str:
        entry = node.get(field)
        if not isinstance(entry, str) or entry not in self.entries:
            raise _corrupt(self.name, f"{where} refers to {entry!r}, which is not an entry of "
                                      f"the archive")
        return entry


class _Reader:
    """Decodes a checked object tree, reading each array entry once."""

    def __init__(self, archive: zipfile.ZipFile, name: str, map_location: MapLocation):
        self.archive = archive
        self.name = name
        self.device_for = _device_resolver(map_location)
        self.cache: dict[str, Any] = {}

    def _array(self, entry: str) -> np.ndarray:
        """The array in ``entry``, its header checked against the entry's size first."""
        info = _stored(self.archive, entry, self.name)
        with self.archive.open(info) as handle:
            try:
                version = np.lib.format.read_magic(handle)
                read_header = {(1, 0): np.lib.format.read_array_header_1_0,
                               (2, 0): np.lib.format.read_array_header_2_0}.get(version)
                if read_header is None:
                    raise ValueError(f"npy format version {version}")
                shape, fortran_order, dtype = read_header(handle)
            except (ValueError, TypeError, SyntaxError) as exc:  # a header is a Python literal
                raise _corrupt(self.name, f"{entry} has no valid .npy header ({exc})") from None
            data_size = info.file_size - handle.tell()
            if dtype.kind not in _ARRAY_KINDS or dtype.hasobject or dtype.shape:
                raise _corrupt(self.name, f"{entry} holds dtype {dtype}; expected a bool, "
                                          f"integer, float or complex dtype")
            if any(size < 0 for size in shape):
                raise _corrupt(self.name, f"{entry} claims the shape {shape}")
            nbytes = math.prod(shape) * dtype.itemsize
            if nbytes != data_size:
                raise _corrupt(self.name, f"{entry} claims shape {shape} of {dtype} "
                                          f"({nbytes} bytes) but holds {data_size} bytes")
            array = np.empty(shape, dtype, order="F" if fortran_order else "C")
            _read_into(handle, array.reshape(-1, order="A").view(np.uint8).data,
                       lambda: _corrupt(self.name, f"{entry} is truncated"))
        return array

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
        try:
            return cls(array, dtype=array.dtype, device=device)
        except (TypeError, ValueError) as exc:
            raise _corrupt(self.name, f"{node['array']} cannot be a tensor ({exc})") from None

    def decode(self, node: Any) -> Any:
        if not isinstance(node, dict):
            return node
        kind = node["type"]
        if kind in _ARRAY_NODES:
            key = f"{kind}:{node['array']}"
            if key not in self.cache:
                self.cache[key] = self._tensor(node) if kind == "tensor" \
                    else self._value(kind, node["array"])
            return self.cache[key]
        if kind == "float":
            return float(node["value"])
        if kind in ("dict", "odict"):
            pairs = [(self._key(k), self.decode(v)) for k, v in node["items"]]
            try:
                return OrderedDict(pairs) if kind == "odict" else dict(pairs)
            except TypeError as exc:  # an unhashable key
                raise _corrupt(self.name, f"a dict key is unhashable ({exc})") from None
        if kind in ("list", "tuple"):
            items = [self.decode(v) for v in node["items"]]
            return items if kind == "list" else tuple(items)
        with self.archive.open(node["entry"]) as handle:  # a pickle, allowed by the caller
            return pickle.loads(handle.read())

    def _value(self, kind: str, entry: str) -> Any:
        array = self._array(entry)
        if kind == "ndarray":
            return array
        if kind == "bytes":
            return array.tobytes()
        if array.shape != ():
            raise _corrupt(self.name, f"{entry} holds a scalar of shape {array.shape}")
        return array[()]

    def _key(self, node: Any) -> Any:
        key = self.decode(node)
        return tuple(key) if isinstance(key, list) else key


def _stored(archive: zipfile.ZipFile, entry: str, name: str) -> zipfile.ZipInfo:
    """``entry``'s info, checked to be stored uncompressed: then the data it unpacks to is
    no larger than the file (a compressed entry could claim gigabytes in a few bytes)."""
    info = archive.getinfo(entry)
    if info.compress_type != zipfile.ZIP_STORED or info.compress_size != info.file_size:
        raise _corrupt(name, f"{entry} is compressed; plugrad stores its entries uncompressed")
    return info


def _read_into(handle: IO[bytes], view: memoryview, truncated: Callable[[], Exception]) -> None:
    """Fill ``view`` from ``handle`` in chunks (a single read would hold a second copy)."""
    while view.nbytes:
        # typeshed types ZipFile.open as IO[bytes]; the ZipExtFile it returns has readinto
        count = handle.readinto(view[:_READ_CHUNK])  # type: ignore[attr-defined]
        if not count:
            raise truncated()
        view = view[count:]


# -- telling the formats apart --------------------------------------------------------------
def _is_pickle(head: bytes) -> bool:
    return len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= pickle.HIGHEST_PROTOCOL


def _open_source(f: PathOrFile) -> tuple[BinaryIO, str, bool]:
    """A seekable binary handle, the name for messages, and whether the handle is ours."""
    if isinstance(f, (str, os.PathLike)):
        return open(os.fspath(f), "rb"), repr(os.fspath(f)), True  # a missing file raises
    if not hasattr(f, "read"):
        raise TypeError(f"load: f must be a path or a binary file object; got "
                        f"{type(f).__name__}")
    name = repr(getattr(f, "name", f"<{type(f).__name__}>"))
    if getattr(f, "seekable", lambda: False)():
        return f, name, False
    return io.BytesIO(f.read()), name, True


def load(f: PathOrFile, map_location: MapLocation = None, allow_pickle: bool = False) -> Any:
    """Load an object saved by :func:`save`, a safetensors file, or (with ``allow_pickle``) a
    plain pickle such as ``megengine.save`` writes.

    Args:
        f: a path or a binary file object.
        map_location: where tensors go: None (the device each was saved from), a device
            string for all of them (``"cpux"``), a dict from saved to target devices
            (``{"gpu0": "cpu0"}``), or a callable ``saved_device -> device``.
        allow_pickle: allow unpickling: objects a plugrad file holds as pickles, and plain
            pickle files. Unpickling can run arbitrary code: only pass True for files you
            trust.

    Raises:
        CorruptFileError: the file is truncated, damaged or not in a format plugrad reads.
        PickleNotAllowedError: the file holds pickled objects and ``allow_pickle`` is False.
    """
    source, name, owned = _open_source(f)
    try:
        start = source.tell()
        head = source.read(16)
        size = source.seek(0, io.SEEK_END) - start
        source.seek(start)
        if _is_pickle(head):
            return _load_pickle(source, name, allow_pickle)
        if _safetensors.looks_like_safetensors(head, size):
            return _safetensors.decode(source.read(), name)
        return _load_archive(source, name, map_location, allow_pickle)
    finally:
        if owned:
            source.close()


def _load_pickle(source: BinaryIO, name: str, allow_pickle: bool) -> Any:
    if not allow_pickle:
        raise PickleNotAllowedError(
            f"load: {name} is a plain pickle file (as megengine.save and pickle.dump write), "
            f"not a plugrad file; unpickling runs whatever code the file holds, so it is "
            f"refused by default. If you trust the file, call plugrad.load(..., "
            f"allow_pickle=True), then plugrad.save it again to get a file that loads safely")
    try:
        return pickle.load(source)
    except ModuleNotFoundError as exc:
        raise ModuleNotFoundError(
            f"load: {name} pickles objects of the module {exc.name!r}, which is not installed "
            f"here; a MegEngine file of Tensors needs megengine to unpickle, so save the state "
            f"dict of NumPy arrays instead (megengine.save(model.state_dict(), path))",
            name=exc.name) from exc
    except (pickle.UnpicklingError, EOFError) as exc:
        raise CorruptFileError(f"load: {name} is a truncated or corrupt pickle file "
                               f"({type(exc).__name__}: {exc})") from exc


def _load_archive(source: BinaryIO, name: str, map_location: MapLocation,
                  allow_pickle: bool) -> Any:
    try:
        archive = zipfile.ZipFile(source)
    except (zipfile.BadZipFile, EOFError) as exc:
        raise CorruptFileError(f"load: {name} is not a plugrad file, or it is truncated or "
                               f"corrupt ({exc}); it was not written by plugrad.save, or the "
                               f"write was cut short") from exc
    with archive:
        try:
            root = _read_manifest(archive, name)
            check = _TreeCheck(archive, name)
            check.node(root, "root")
            if check.pickles and not allow_pickle:
                raise PickleNotAllowedError(
                    f"load: {name} holds {len(check.pickles)} pickled Python object(s); "
                    f"unpickling can run arbitrary code, so it is refused by default. If you "
                    f"trust the file, call plugrad.load(..., allow_pickle=True)")
            return _Reader(archive, name, map_location).decode(root)
        except (PickleNotAllowedError, CorruptFileError):
            raise
        except (KeyError, ValueError, zipfile.BadZipFile, EOFError) as exc:
            raise CorruptFileError(f"load: {name} is truncated or corrupt, or not a plugrad "
                                   f"file ({type(exc).__name__}: {exc})") from exc


def _read_manifest(archive: zipfile.ZipFile, name: str) -> Any:
    """The manifest's object tree, after its format and version are checked."""
    try:
        manifest = json.loads(archive.read(_stored(archive, _MANIFEST, name)))
    except RecursionError:
        raise _corrupt(name, f"{_MANIFEST} is nested too deeply") from None
    except UnicodeDecodeError as exc:
        raise _corrupt(name, f"{_MANIFEST} is not text ({exc})") from None
    if not isinstance(manifest, dict):
        raise _corrupt(name, f"{_MANIFEST} holds a {type(manifest).__name__}, not an object")
    if manifest.get("format") != FORMAT:
        raise _corrupt(name, f"format {manifest.get('format')!r}; expected {FORMAT!r}")
    version = manifest.get("version", 0)
    if not isinstance(version, int):
        raise _corrupt(name, f"version {version!r} is not a number")
    if version > VERSION:
        raise CorruptFileError(f"load: {name} has format version {version}, newer than this "
                               f"plugrad's {VERSION}; upgrade plugrad")
    if "root" not in manifest:
        raise _corrupt(name, f"{_MANIFEST} has no root object")
    return manifest["root"]
