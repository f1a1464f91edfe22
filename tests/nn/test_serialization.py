"""plugrad.save / plugrad.load: exact round trips, safety (no pickle by default), corrupt
files, atomic writes and map_location."""
import io
import json
import os
import pickle
import re
import tracemalloc
import zipfile
from collections import OrderedDict

import numpy as np
import pytest

import plugrad as P
import plugrad.module as M
import plugrad.serialization as S


class Opaque:
    value = 3


def test_model_round_trip_gives_bit_exact_predictions(tmp_path):
    P.random.seed(0)
    model = M.LeNet()
    x = P.Tensor(np.random.default_rng(0).standard_normal((4, 1, 32, 32)).astype(np.float32))
    before = model(x).numpy()
    P.save(model.state_dict(), tmp_path / "lenet.pkg")
    fresh = M.LeNet()
    fresh.load_state_dict(P.load(tmp_path / "lenet.pkg"))
    np.testing.assert_array_equal(fresh(x).numpy(), before)


def test_nested_values_keep_their_types(tmp_path):
    shared = P.Parameter(np.arange(3, dtype=np.float32))
    obj = {
        "tensors": [shared, shared, P.Tensor(np.array([1, 2], np.int32))],
        "arrays": (np.eye(2), np.float64(2.5), np.int16(-3)),
        "ordered": OrderedDict([("b", 1), ("a", 2)]),
        "numbers": {1: 2.5, (2, "x"): None, "inf": float("inf"), "big": 2 ** 70},
        "text": "héllo", "raw": b"\x00\x01", "flag": True,
    }
    P.save(obj, tmp_path / "obj")
    back = P.load(tmp_path / "obj")
    first, second, ints = back["tensors"]
    assert type(first) is P.Parameter and first is second  # sharing survives
    np.testing.assert_array_equal(first.numpy(), [0, 1, 2])
    assert ints.dtype == np.int32 and type(ints) is P.Tensor
    assert isinstance(back["arrays"], tuple)
    np.testing.assert_array_equal(back["arrays"][0], np.eye(2))
    assert type(back["arrays"][1]) is np.float64 and back["arrays"][2] == np.int16(-3)
    assert type(back["ordered"]) is OrderedDict and list(back["ordered"]) == ["b", "a"]
    assert back["numbers"] == {1: 2.5, (2, "x"): None, "inf": float("inf"), "big": 2 ** 70}
    assert back["text"] == "héllo" and back["raw"] == b"\x00\x01" and back["flag"] is True


def test_file_objects_work_too():
    buffer = io.BytesIO()
    P.save({"w": P.Tensor(np.ones(3, np.float32))}, buffer)
    buffer.seek(0)
    np.testing.assert_array_equal(P.load(buffer)["w"].numpy(), 1)


def test_the_default_format_holds_no_pickle(tmp_path):
    P.save({"w": P.Tensor(np.ones(2, np.float32))}, tmp_path / "f")
    with zipfile.ZipFile(tmp_path / "f") as archive:
        names = archive.namelist()
    assert "manifest.json" in names and all(n.endswith((".npy", ".json")) for n in names)


def test_pickle_needs_opt_in_to_save_and_to_load(tmp_path):
    with pytest.raises(S.PickleNotAllowedError, match=r"obj\['thing'\] is a Opaque.*"
                                                      r"allow_pickle=True"):
        P.save({"thing": Opaque()}, tmp_path / "f")
    assert not os.path.exists(tmp_path / "f")
    P.save({"thing": Opaque()}, tmp_path / "f", pickle_protocol=4)
    with pytest.raises(S.PickleNotAllowedError, match="pickled.*allow_pickle=True"):
        P.load(tmp_path / "f")
    assert P.load(tmp_path / "f", allow_pickle=True)["thing"].value == 3


@pytest.mark.parametrize("cut", [0.5, 0.9])
def test_truncated_file_gives_an_error_naming_it(tmp_path, cut):
    path = tmp_path / "model.pkg"
    P.save(M.LeNet().state_dict(), path)
    data = path.read_bytes()
    path.write_bytes(data[:int(len(data) * cut)])
    with pytest.raises(S.CorruptFileError, match="model.pkg.*truncated or corrupt"):
        P.load(path)


def test_damaged_bytes_are_detected(tmp_path):
    path = tmp_path / "model.pkg"
    P.save({"w": P.Tensor(np.zeros(1000, np.float32))}, path)
    data = bytearray(path.read_bytes())
    data[600] ^= 0xFF  # inside the array entry: its CRC no longer matches
    path.write_bytes(bytes(data))
    with pytest.raises(S.CorruptFileError, match="model.pkg"):
        P.load(path)


def test_not_a_plugrad_file(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("hello")
    with pytest.raises(S.CorruptFileError, match="notes.txt.*not a plugrad file"):
        P.load(path)
    with pytest.raises(FileNotFoundError):
        P.load(tmp_path / "missing")


def test_a_crash_mid_save_leaves_the_old_file_intact(tmp_path, monkeypatch):
    path = tmp_path / "ckpt.pkg"
    P.save({"version": 1, "w": P.Tensor(np.ones(4, np.float32))}, path)
    original = path.read_bytes()
    real_write = np.lib.format.write_array
    calls = []

    def crash_after_one(handle, array, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise OSError("disk full")  # simulated crash halfway through the arrays
        return real_write(handle, array, **kwargs)

    monkeypatch.setattr(np.lib.format, "write_array", crash_after_one)
    with pytest.raises(OSError, match="disk full"):
        P.save({"version": 2, "a": np.zeros(3), "b": np.zeros(3)}, path)
    monkeypatch.undo()
    assert path.read_bytes() == original
    assert P.load(path)["version"] == 1
    assert os.listdir(tmp_path) == ["ckpt.pkg"]  # no temporary file left behind


def test_save_replaces_via_os_replace(tmp_path, monkeypatch):
    seen = []
    real = os.replace
    monkeypatch.setattr(os, "replace", lambda a, b: seen.append((a, b)) or real(a, b))
    P.save({"x": 1}, tmp_path / "f")
    (temp, target), = seen
    assert os.path.dirname(temp) == str(tmp_path) and target == str(tmp_path / "f")


def test_map_location(tmp_path):
    path = tmp_path / "f"
    P.save({"w": P.Tensor(np.ones(2, np.float32), device="cpu0")}, path)
    assert str(P.load(path)["w"].device) == "cpu0:0"
    assert str(P.load(path, map_location="xpux")["w"].device) == "xpux:0"
    assert str(P.load(path, map_location={"cpu0": "cpux"})["w"].device) == "cpux:0"
    assert str(P.load(path, map_location=lambda saved: "cpu0:1")["w"].device) == "cpu0:1"
    with pytest.raises(RuntimeError, match="map_location"):
        P.load(path, map_location="nosuchdev0")


# -- pickles are never unpickled without the opt-in, whatever the manifest says -------------
class RunsCode:
    """Unpickling this runs ``touch <marker>``: the payload of a malicious checkpoint."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def crafted(path, root, entries=(), manifest=None, compress=zipfile.ZIP_STORED):
    """A zip laid out as plugrad writes it, with any manifest and entries (``compress``
    applies to the entries)."""
    manifest = manifest if manifest is not None else json.dumps(
        {"format": "plugrad", "version": 1, "pickles": [], "root": root})
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in entries:
            archive.writestr(name, data, compress_type=compress)
        archive.writestr("manifest.json", manifest)
    return path


@pytest.mark.parametrize("where", ["root", "nested"])
def test_a_pickle_node_the_manifest_does_not_list_is_refused(tmp_path, where):
    marker = tmp_path / "ran"
    node = {"type": "pickle", "entry": "pickles/1.pkl"}
    root = node if where == "root" else {"type": "dict", "items": [
        ["w", {"type": "list", "items": [1, {"type": "tuple", "items": [node]}]}]]}
    path = crafted(tmp_path / "evil.pkg", root,
                   [("pickles/1.pkl", pickle.dumps(RunsCode(marker)))])
    with pytest.raises(S.PickleNotAllowedError, match="evil.pkg' holds 1 pickled"):
        P.load(path)
    assert not marker.exists()
    P.load(path, allow_pickle=True)  # the payload is real: with the opt-in it runs
    assert marker.exists()


def npy(descr, shape, data=b"", fortran=False, version=b"\x01\x00"):
    """An .npy entry with a hand-written header (any claims, any data)."""
    header = repr({"descr": descr, "fortran_order": fortran, "shape": shape}).encode()
    header += b" " * (63 - (10 + len(header)) % 64) + b"\n"
    return b"\x93NUMPY" + version + len(header).to_bytes(2, "little") + header + data


def ndarray_root(entry="arrays/1.npy"):
    return {"type": "ndarray", "array": entry}


def deep_lists(depth):
    node = 1
    for _ in range(depth):
        node = {"type": "list", "items": [node]}
    return node


CRAFTED = {
    # name: (root, entries, manifest text or None, what the message says)
    "type not a string": ({"type": ["list"]}, [], None, "unknown type"),
    "items not a list": ({"type": "dict", "items": 5}, [], None, "items are not a list"),
    "dict item not a pair": ({"type": "dict", "items": [[1]]}, [], None, "not a .key, value"),
    "unhashable key": ({"type": "dict", "items": [[{"type": "dict", "items": []}, 1]]}, [],
                       None, "key"),
    "bare JSON list": ({"type": "list", "items": [[1, 2]]}, [], None, "JSON list"),
    "array ref not a string": ({"type": "ndarray", "array": 5}, [], None, "not an entry"),
    "array ref missing": (ndarray_root("arrays/9.npy"), [], None, "not an entry"),
    "pickle ref missing": ({"type": "pickle", "entry": "pickles/2.pkl"}, [], None,
                           "not an entry"),
    "float value not a string": ({"type": "float", "value": [1]}, [], None, "not a number"),
    "tensor device not a string": ({"type": "tensor", "array": "arrays/1.npy", "device": 3},
                                   [("arrays/1.npy", npy("<f4", (1,), b"\0" * 4))], None,
                                   "device and class must be strings"),
    "deep nesting": (deep_lists(S.MAX_DEPTH + 5), [], None, "nested more than"),
    "nesting deeper than JSON parses": (None, [], "[" * 100_000 + "]" * 100_000, "too deeply"),
    "manifest not JSON": (None, [], "{", "JSONDecodeError"),
    "manifest not an object": (None, [], "[]", "holds a list"),
    "manifest without root": (None, [], '{"format": "plugrad", "version": 1}', "no root"),
    "wrong format": (None, [], '{"format": "other", "root": 1}', "format 'other'"),
    "version not a number": (None, [], '{"format": "plugrad", "version": "2", "root": 1}',
                             "version '2'"),
    "40 GB claimed by 100 bytes": (ndarray_root(), [
        ("arrays/1.npy", npy("<f4", (10_000_000_000,), b"\0" * 100))], None,
        r"claims shape \(10000000000,\) of float32 \(40000000000 bytes\) but holds 100"),
    "size disagrees with the entry": (ndarray_root(), [
        ("arrays/1.npy", npy("<f4", (10,), b"\0" * 20))], None, "but holds 20 bytes"),
    "object dtype": (ndarray_root(), [("arrays/1.npy", npy("|O", (1,), b"\0" * 8))], None,
                     "dtype object"),
    "structured dtype": (ndarray_root(), [
        ("arrays/1.npy", npy([("a", "<f4")], (1,), b"\0" * 4))], None, "dtype"),
    "negative shape": (ndarray_root(), [("arrays/1.npy", npy("<f4", (-1,)))], None,
                       r"shape \(-1,\)"),
    "shape not ints": (ndarray_root(), [("arrays/1.npy", npy("<f4", ("a",)))], None,
                       "no valid .npy header"),
    "not an npy entry": (ndarray_root(), [("arrays/1.npy", b"hello world")], None,
                         "no valid .npy header"),
    "unknown npy version": (ndarray_root(), [
        ("arrays/1.npy", npy("<f4", (1,), b"\0" * 4, version=b"\x09\x00"))], None,
        "no valid .npy header"),
    "scalar with a shape": ({"type": "npscalar", "array": "arrays/1.npy"}, [
        ("arrays/1.npy", npy("<f4", (3,), b"\0" * 12))], None, "scalar of shape"),
}


@pytest.mark.parametrize("case", list(CRAFTED))
def test_crafted_files_raise_corrupt_file_error_saying_what_is_wrong(tmp_path, case):
    root, entries, manifest, what = CRAFTED[case]
    path = crafted(tmp_path / "crafted.pkg", root, entries, manifest)
    tracemalloc.start()
    try:
        with pytest.raises(S.CorruptFileError, match="crafted.pkg") as error:
            P.load(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert re.search(what, str(error.value)), str(error.value)
    assert peak < 10 * os.path.getsize(path) + (4 << 20)  # nothing near what was claimed


def test_compressed_entries_are_refused_before_they_are_unpacked(tmp_path):
    # 40 MB of zeros deflate to ~40 KB: a compressed entry could claim far more than the file.
    data = npy("<f4", (10_000_000,), bytes(40_000_000))
    path = crafted(tmp_path / "bomb.pkg", ndarray_root(), [("arrays/1.npy", data)],
                   compress=zipfile.ZIP_DEFLATED)
    assert os.path.getsize(path) < 1_000_000
    with pytest.raises(S.CorruptFileError, match="bomb.pkg.*arrays/1.npy is compressed"):
        P.load(path)


def test_arrays_read_from_entries_are_writable_and_exact(tmp_path):
    original = {"c": np.arange(12, dtype=np.float64).reshape(3, 4),
                "f": np.asfortranarray(np.arange(6, dtype=np.int16).reshape(2, 3)),
                "empty": np.zeros((0, 3), np.float32), "flag": np.array(True)}
    P.save(original, tmp_path / "a")
    back = P.load(tmp_path / "a")
    for name, array in original.items():
        np.testing.assert_array_equal(back[name], array)
        assert back[name].dtype == array.dtype and back[name].flags.writeable
    assert back["f"].flags.f_contiguous


class ReadOnly:
    """A stream with only ``read``, as a socket or pipe wrapper may be."""

    def __init__(self, data):
        self.stream = io.BytesIO(data)

    def read(self, *size):
        return self.stream.read(*size)


def test_streams_that_cannot_seek_load_too(tmp_path):
    P.save({"w": np.arange(3)}, tmp_path / "f")
    np.testing.assert_array_equal(P.load(ReadOnly((tmp_path / "f").read_bytes()))["w"],
                                  [0, 1, 2])
