"""Tensor construction, dtype rules, reprs and methods against NumPy and the seeds."""
from __future__ import annotations

import numpy as np
import pytest

import plugrad
import plugrad.functional as F
from plugrad import Parameter, Tensor


@pytest.mark.parametrize("data, dtype", [
    (1, np.int32), (1.5, np.float32), (True, np.bool_), ([1, 2], np.int32), ([1.0, 2], np.float32),
    (np.arange(3, dtype=np.int64), np.int32), (np.ones(2, np.float64), np.float32),
    (np.ones(2, np.float16), np.float16), (np.ones(2, np.uint8), np.uint8), (range(5), np.int32),
])
def test_default_dtypes_follow_megengine(data, dtype):
    t = Tensor(data)
    assert t.dtype == dtype
    np.testing.assert_array_equal(t.numpy(), np.asarray(data).astype(dtype))


def test_explicit_float64_is_kept_where_the_backend_declares_it():
    t = Tensor([1.0, 2.0], dtype="float64")
    assert t.dtype == np.float64
    assert (t * 2).dtype == np.float64


def test_unsupported_dtype_names_backend_and_dtype():
    with pytest.raises(TypeError, match=r"backend 'numpy'.*complex64"):
        Tensor([1.0], dtype="complex64")
    with pytest.raises(TypeError, match="cannot make a tensor"):
        Tensor(["a", "b"])


@pytest.mark.parametrize("make, text", [
    (lambda: Tensor([0.0, 1.0, 2.0]), "Tensor([0. 1. 2.], device=xpux:0)"),
    (lambda: Tensor([1, 2, 3]), "Tensor([1 2 3], dtype=int32, device=xpux:0)"),
    (lambda: Tensor(1.0), "Tensor(1.0, device=xpux:0)"),
    (lambda: Parameter([2.98]), "Parameter([2.98], device=xpux:0)"),
    (lambda: Tensor([[1, 2, 3], [4, 5, 6]]),
     "Tensor([[1 2 3]\n [4 5 6]], dtype=int32, device=xpux:0)"),
    (lambda: Tensor([True, False]), "Tensor([ True False], dtype=bool, device=xpux:0)"),
    (lambda: F.arange(5).astype("float16"),
     "Tensor([0. 1. 2. 3. 4.], dtype=float16, device=xpux:0)"),
])
def test_repr_is_megengines(make, text):
    assert repr(make()) == text


def test_classes_print_like_megengine():
    assert str(type(Tensor(1))) == "<class 'plugrad.tensor.Tensor'>"
    assert str(type(Parameter(1.0))) == "<class 'plugrad.tensor.Parameter'>"
    assert str(Tensor(1.0).dtype) == "<class 'numpy.float32'>"
    assert plugrad.tensor is Tensor


def test_construction_copies_its_input():
    source = np.zeros(3, np.float32)
    t = Tensor(source)
    source[0] = 5
    assert t.numpy()[0] == 0
    u = Tensor(t)
    assert u._data is not t._data and u.dtype == t.dtype


def test_properties():
    t = Tensor(np.arange(6).reshape(2, 3))
    assert t.shape == (2, 3) and t.ndim == 2 and t.size == 6 and len(t) == 2
    assert t.T.shape == (3, 2)
    assert str(t.device) == "xpux:0"
    assert t.grad is None


def test_numpy_returns_an_independent_copy():
    t = Tensor([1.0, 2.0])
    host = t.numpy()
    host[0] = 9
    assert t.numpy()[0] == 1.0
    assert isinstance(np.asarray(t), np.ndarray)


def test_item_tolist_bool_len_iter():
    assert Tensor([[5.0]]).item() == 5.0 and isinstance(Tensor([[5.0]]).item(), float)
    assert Tensor([[1, 2], [3, 4]]).tolist() == [[1, 2], [3, 4]]
    assert bool(Tensor([1])) and not bool(Tensor(0.0))
    with pytest.raises(ValueError, match="ambiguous"):
        bool(Tensor([1, 2]))
    with pytest.raises(ValueError, match="one element"):
        Tensor([1, 2]).item()
    with pytest.raises(TypeError):
        len(Tensor(1.0))
    assert [r.tolist() for r in Tensor([[1, 2], [3, 4]])] == [[1, 2], [3, 4]]


def test_reshape_forms():
    t = Tensor(np.random.rand(2, 3, 4, 5))
    assert t.reshape(2, -1, 5).shape == (2, 12, 5)
    assert t.reshape((6, 20)).shape == (6, 20)
    assert t.reshape([120]).shape == (120,)
    with pytest.raises(ValueError, match=r"\(2, 3, 4, 5\).*\(7, -1\)"):
        t.reshape(7, -1)
    with pytest.raises(ValueError, match="one -1"):
        t.reshape(-1, -1)


def test_transpose_flatten_and_reductions_match_numpy():
    data = np.random.RandomState(0).rand(2, 3, 4).astype(np.float32)
    t = Tensor(data)
    np.testing.assert_array_equal(t.transpose(2, 0, 1).numpy(), data.transpose(2, 0, 1))
    np.testing.assert_array_equal(t.transpose((1, 0, 2)).numpy(), data.transpose(1, 0, 2))
    assert t.flatten().shape == (24,)
    for name in ("sum", "mean", "max", "min", "prod"):
        for axis, keepdims in [(None, False), (1, False), ((0, 2), True), (-1, True)]:
            got = getattr(t, name)(axis=axis, keepdims=keepdims).numpy()
            want = getattr(np, name)(data.astype(np.float64), axis=axis, keepdims=keepdims)
            np.testing.assert_allclose(got, want, rtol=1e-5, err_msg=f"{name} {axis}")


def test_integer_sums_stay_int32_and_bool_sums_count():
    assert Tensor([1, 2, 3]).sum().dtype == np.int32
    assert (Tensor([1, 2, 3]) > 1).sum().item() == 2
    assert Tensor([1, 2]).mean().dtype == np.float32


ARITH = [
    ("__add__", np.add), ("__sub__", np.subtract), ("__mul__", np.multiply),
    ("__truediv__", np.true_divide), ("__floordiv__", np.floor_divide), ("__mod__", np.mod),
    ("__pow__", np.power),
]


@pytest.mark.parametrize("method, ref", ARITH)
def test_arithmetic_and_reflected_match_numpy(method, ref):
    x = np.array([[1.5, -2.0, 3.0], [4.0, 5.5, -6.0]], np.float32)
    y = np.array([2.0, -3.0, 1.5], np.float32)
    if method == "__pow__":  # real powers need a positive base
        x = np.abs(x)
    tx, ty = Tensor(x), Tensor(y)
    np.testing.assert_allclose(getattr(tx, method)(ty).numpy(),
                               ref(x.astype(np.float64), y.astype(np.float64)), rtol=1e-5)
    reflected = "__r" + method[2:]
    np.testing.assert_allclose(getattr(tx, reflected)(2.0).numpy(),
                               ref(2.0, x.astype(np.float64)), rtol=1e-5)


def test_scalar_promotion_rules():
    i = Tensor([1, 2, 3])
    assert (i + 1).dtype == np.int32
    assert (i + 1.5).dtype == np.float32
    assert (i / i).dtype == np.float32
    np.testing.assert_array_equal((Tensor([1, 2]) / 2).numpy(), [0.5, 1.0])
    assert (Tensor([1.0], dtype="float16") + 1.0).dtype == np.float16
    assert (Tensor([1], dtype="uint8") + Tensor([1], dtype="int8")).dtype == np.int16
    assert (Tensor([1], dtype="int32") + Tensor([1.0], dtype="float16")).dtype == np.float16
    assert (np.float32(2.0) * Tensor([1.0])).__class__ is Tensor
    assert (np.ones(2, np.float32) + Tensor([1.0, 2.0])).__class__ is Tensor


def test_comparisons_give_bool_tensors():
    x, y = Tensor([1, 2, 3]), Tensor([3, 2, 1])
    for op, ref in [("__eq__", np.equal), ("__ne__", np.not_equal), ("__lt__", np.less),
                    ("__le__", np.less_equal), ("__gt__", np.greater),
                    ("__ge__", np.greater_equal)]:
        out = getattr(x, op)(y)
        assert out.dtype == np.bool_
        np.testing.assert_array_equal(out.numpy(), ref([1, 2, 3], [3, 2, 1]))
    assert (2 < x).numpy().tolist() == [False, False, True]


def test_unary_matmul_and_logical_operators():
    x = Tensor([[1.0, -2.0], [3.0, 4.0]])
    np.testing.assert_array_equal((-x).numpy(), [[-1, 2], [-3, -4]])
    np.testing.assert_array_equal(abs(x).numpy(), [[1, 2], [3, 4]])
    np.testing.assert_array_equal((x @ x).numpy(), np.array([[1, -2], [3, 4]]) @ [[1, -2], [3, 4]])
    m = Tensor([True, False])
    assert (~m).tolist() == [False, True]
    assert (m & Tensor([True, True])).tolist() == [True, False]
    assert (m | Tensor([False, False])).tolist() == [True, False]
    assert (m ^ Tensor([True, True])).tolist() == [False, True]


def test_inplace_operators_keep_identity_and_dtype():
    t = Tensor([1.0, 2.0])
    same = t
    t += 1
    t *= Tensor([2.0, 3.0])
    t -= 1
    t /= 2
    assert t is same
    np.testing.assert_allclose(t.numpy(), [1.5, 4.0])
    i = Tensor([1, 2])
    with pytest.raises(TypeError, match="in place"):
        i /= 2


INDEXES = [
    (1,), (slice(None, None, 2),), (slice(3, 0, -1), 1), (Ellipsis, 0), (None, 1), (1, None, 2),
    (slice(1, None), [0, 2]), ([1, 3], [0, 1]), (np.array([True, False, True, False]),),
    (Ellipsis,), (-1, -2), (slice(None), None, slice(None, None, -1)),
]


@pytest.mark.parametrize("index", INDEXES, ids=str)
def test_getitem_matches_numpy(index):
    data = np.arange(12, dtype=np.float32).reshape(4, 3)
    np.testing.assert_array_equal(Tensor(data)[index].numpy(), data[index])


def test_getitem_with_tensor_indices_and_seed_slice():
    A = Tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    assert repr(A[1, :2]) == "Tensor([4. 5.], device=xpux:0)"
    assert A[Tensor([1, 0])].tolist() == [[4, 5, 6], [1, 2, 3]]
    assert A[A > 3].tolist() == [4, 5, 6]
    assert A[Tensor(1)].tolist() == [4, 5, 6]


def test_getitem_out_of_range_names_the_shape():
    with pytest.raises(IndexError, match=r"getitem.*\(2, 3\)"):
        Tensor(np.zeros((2, 3)))[5]


def test_setitem_matches_numpy():
    data = np.arange(12, dtype=np.float32).reshape(4, 3)
    t = Tensor(data)
    same = t
    t[1] = 0
    t[:, 2] = Tensor([7.0, 8.0, 9.0, 10.0])
    t[t > 8] = -1
    t[[0, 3], [0, 1]] = 5
    data[1] = 0
    data[:, 2] = [7, 8, 9, 10]
    data[data > 8] = -1
    data[[0, 3], [0, 1]] = 5
    assert t is same
    np.testing.assert_array_equal(t.numpy(), data)
    with pytest.raises(ValueError, match="setitem"):
        t[0] = Tensor([1.0, 2.0])


def test_operations_on_parameters_return_tensors():
    p = Parameter([1.0, 2.0])
    assert type(p + 1) is Tensor and type(p * p) is Tensor and type(p[0]) is Tensor
    assert type(F.exp(p)) is Tensor


def test_detach_shares_data_but_not_the_tape():
    t = Tensor([1.0])
    d = t.detach()
    assert d._data is t._data and d._node is None


def test_pickle_round_trip():
    import pickle

    p = Parameter([1.5, 2.5])
    q = pickle.loads(pickle.dumps(p))
    assert type(q) is Parameter and q.tolist() == [1.5, 2.5]
