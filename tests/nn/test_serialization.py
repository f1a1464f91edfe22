"""plugrad.save / plugrad.load: exact round trips, safety (no pickle by default), corrupt
files, atomic writes and map_location."""
import io
import os
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
