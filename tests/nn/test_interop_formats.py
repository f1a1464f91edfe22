"""Weights to and from other tools: plain pickles as MegEngine's save writes them (with the
opt-in only), and safetensors files as PyTorch and Hugging Face tools read and write them."""
import os
import pickle
import sys
from collections import OrderedDict

import numpy as np
import pytest
import safetensors.numpy

import plugrad as P
import plugrad.module as M
import plugrad.serialization as S


def megengine_save(obj, path, protocol=pickle.DEFAULT_PROTOCOL):
    """What ``megengine.save(obj, path)`` does: ``pickle.dump`` of the object to the file."""
    with open(path, "wb") as f:
        pickle.dump(obj, f, protocol=protocol)


def lenet_and_input():
    P.random.seed(3)
    x = P.Tensor(np.random.default_rng(3).standard_normal((2, 1, 32, 32)).astype(np.float32))
    return M.LeNet(), x


@pytest.mark.parametrize("protocol", [2, 4, pickle.HIGHEST_PROTOCOL])
def test_a_megengine_pickle_loads_with_the_opt_in(tmp_path, protocol):
    model, x = lenet_and_input()
    state = model.state_dict()  # MegEngine's state dicts: names -> NumPy arrays
    megengine_save(state, tmp_path / "lenet.pkl", protocol)
    back = P.load(tmp_path / "lenet.pkl", allow_pickle=True)
    assert type(back) is OrderedDict and list(back) == list(state)
    for name, array in state.items():
        np.testing.assert_array_equal(back[name], array)
        assert back[name].dtype == array.dtype
    fresh = M.LeNet()
    fresh.load_state_dict(back)
    np.testing.assert_array_equal(fresh(x).numpy(), model(x).numpy())


class RunsCode:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_a_plain_pickle_is_refused_without_the_opt_in(tmp_path):
    marker = tmp_path / "ran"
    megengine_save({"w": np.ones(2), "x": RunsCode(marker)}, tmp_path / "model.pkl")
    with pytest.raises(S.PickleNotAllowedError,
                       match=r"model.pkl' is a plain pickle file \(as megengine.save.*runs "
                             r"whatever code.*allow_pickle=True"):
        P.load(tmp_path / "model.pkl")
    assert not marker.exists()


def test_a_truncated_pickle_is_a_corrupt_file(tmp_path):
    megengine_save({"w": np.ones(100)}, tmp_path / "cut.pkl")
    data = (tmp_path / "cut.pkl").read_bytes()
    (tmp_path / "cut.pkl").write_bytes(data[:len(data) // 2])
    with pytest.raises(S.CorruptFileError, match="cut.pkl' is a truncated or corrupt pickle"):
        P.load(tmp_path / "cut.pkl", allow_pickle=True)


def test_a_lenet_state_dict_round_trips_through_safetensors_own_loader(tmp_path):
    model, x = lenet_and_input()
    state = model.state_dict()
    P.save(state, tmp_path / "lenet.safetensors")
    theirs = safetensors.numpy.load_file(str(tmp_path / "lenet.safetensors"))
    assert sorted(theirs) == sorted(state)
    for name, array in state.items():
        assert theirs[name].dtype == array.dtype and theirs[name].shape == array.shape
        np.testing.assert_array_equal(theirs[name], array)
    ours = P.load(tmp_path / "lenet.safetensors")
    fresh = M.LeNet()
    fresh.load_state_dict(ours)
    np.testing.assert_array_equal(fresh(x).numpy(), model(x).numpy())


def test_a_safetensors_file_written_elsewhere_loads(tmp_path):
    arrays = {"w": np.arange(6, dtype=np.float16).reshape(2, 3),
              "steps": np.array([7], np.int64), "mask": np.array([True, False])}
    safetensors.numpy.save_file(arrays, str(tmp_path / "hf.safetensors"))
    back = P.load(tmp_path / "hf.safetensors")
    assert sorted(back) == sorted(arrays)
    for name, array in arrays.items():
        assert back[name].dtype == array.dtype
        np.testing.assert_array_equal(back[name], array)
    with open(tmp_path / "hf.safetensors", "rb") as f:  # file objects work too
        np.testing.assert_array_equal(P.load(f)["w"], arrays["w"])


def test_tensors_are_saved_through_their_host_copy(tmp_path):
    model, _ = lenet_and_input()
    tensors = model.state_dict(keep_var=True)
    P.save(tensors, tmp_path / "t.safetensors")
    theirs = safetensors.numpy.load_file(str(tmp_path / "t.safetensors"))
    for name, tensor in tensors.items():
        np.testing.assert_array_equal(theirs[name], tensor.numpy())


@pytest.mark.parametrize("obj, message", [
    ([np.ones(2)], "holds a flat dict of names to arrays; got a list"),
    ({"a": {"b": np.ones(2)}}, r"obj\['a'\] is a dict; expected Tensors or NumPy arrays"),
    ({"lr": 0.1}, r"obj\['lr'\] is a float"),
    ({1: np.ones(2)}, "names must be strings; got the key 1"),
    ({"z": np.ones(2, np.complex128)}, r"cannot store these arrays \(dtypes complex128\)"),
])
def test_only_flat_dicts_of_arrays_go_to_safetensors(tmp_path, obj, message):
    with pytest.raises(TypeError, match=message):
        P.save(obj, tmp_path / "bad.safetensors")
    assert os.listdir(tmp_path) == []


def test_a_truncated_safetensors_file_is_a_corrupt_file(tmp_path):
    P.save({"w": np.ones(100, np.float32)}, tmp_path / "cut.safetensors")
    data = (tmp_path / "cut.safetensors").read_bytes()
    (tmp_path / "cut.safetensors").write_bytes(data[:len(data) - 40])
    with pytest.raises(S.CorruptFileError, match="cut.safetensors' is a truncated or corrupt "
                                                 "safetensors file"):
        P.load(tmp_path / "cut.safetensors")


def test_without_the_package_the_error_names_the_extra(tmp_path, monkeypatch):
    safetensors.numpy.save_file({"w": np.ones(2)}, str(tmp_path / "w.safetensors"))
    monkeypatch.setitem(sys.modules, "safetensors", None)  # as if it were not installed
    monkeypatch.setitem(sys.modules, "safetensors.numpy", None)
    for call in (lambda: P.save({"w": np.ones(2)}, tmp_path / "new.safetensors"),
                 lambda: P.load(tmp_path / "w.safetensors")):
        with pytest.raises(ImportError) as error:
            call()
        assert str(error.value).count("\n") == 0
        assert "pip install 'plugrad[safetensors]'" in str(error.value)
    assert not os.path.exists(tmp_path / "new.safetensors")


def test_a_pickle_of_objects_from_a_missing_module_names_it(tmp_path):
    # What megengine.save writes for a dict of MegEngine Tensors (keep_var=True): a reference
    # to megengine.tensor.Tensor, which cannot be rebuilt without megengine installed.
    (tmp_path / "tensors.pkl").write_bytes(b"\x80\x02cmegengine.tensor\nTensor\n)\x81.")
    with pytest.raises(ModuleNotFoundError, match="tensors.pkl' pickles objects of the module "
                                                  "'megengine'.*state_dict"):
        P.load(tmp_path / "tensors.pkl", allow_pickle=True)
