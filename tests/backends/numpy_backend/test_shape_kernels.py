"""The numpy backend's own reshape, broadcast_to, full, max and min: the same arrays as NumPy's
functions (which the generic Array API kernels call), with fewer Python layers."""
import numpy as np
import pytest

from plugrad.backends.numpy_backend.kernels import kernel_table, overrides

KERNELS = kernel_table(np)


def test_these_kernels_are_the_backends_own_not_the_generic_ones():
    assert {"reshape", "broadcast_to", "full", "max", "min"} <= set(overrides(np))


@pytest.mark.parametrize("shape, target", [
    ((), (64,)), ((), (2, 3)), ((3,), (2, 3)), ((3, 1), (2, 3, 4)), ((2, 1, 3), (2, 5, 3)),
    ((1, 1), (1, 1)), ((0, 1), (0, 4)), ((4,), (4,)),
])
def test_broadcast_to_is_numpys_read_only_view(shape, target):
    x = np.arange(int(np.prod(shape)), dtype=np.float32).reshape(shape)
    got, want = KERNELS["broadcast_to"](x, shape=target), np.broadcast_to(x, target)
    assert got.shape == want.shape and got.dtype == want.dtype
    np.testing.assert_array_equal(got, want)
    moving = [i for i, size in enumerate(target) if size > 1]  # a size-1 axis's stride is moot
    assert [got.strides[i] for i in moving] == [want.strides[i] for i in moving]
    assert got is not x and not got.flags.writeable
    assert x.size == 0 or np.shares_memory(got, x)


def test_broadcast_to_of_a_strided_view_matches_numpy():
    x = np.arange(12.0).reshape(3, 4)[:, ::2]  # not contiguous
    got = KERNELS["broadcast_to"](x, shape=(2, 3, 2))
    np.testing.assert_array_equal(got, np.broadcast_to(x, (2, 3, 2)))
    assert np.shares_memory(got, x) and not got.flags.writeable


def test_broadcast_to_an_incompatible_shape_raises_numpys_error():
    with pytest.raises(ValueError, match="could not be broadcast"):
        KERNELS["broadcast_to"](np.ones((2, 3)), shape=(4, 3))


def test_reshape_is_a_view_where_numpy_makes_one_and_a_copy_where_it_must():
    x = np.arange(24.0).reshape(4, 6)
    view = KERNELS["reshape"](x, shape=(2, 12))
    assert np.shares_memory(view, x)
    np.testing.assert_array_equal(view, np.reshape(x, (2, 12)))
    strided = x[:, ::2]
    copy = KERNELS["reshape"](strided, shape=(12,))
    np.testing.assert_array_equal(copy, np.reshape(strided, (12,)))


def test_full_has_the_shape_value_and_dtype_asked_for():
    out = KERNELS["full"](shape=(2, 3), value=1.5, dtype=np.dtype("float32"))
    assert out.shape == (2, 3) and out.dtype == np.float32 and (out == 1.5).all()
    scalar = KERNELS["full"](shape=(), value=1, dtype=np.dtype("int32"))
    assert isinstance(scalar, np.ndarray) and scalar.shape == () and scalar.dtype == np.int32


@pytest.mark.parametrize("name, reference", [("max", np.max), ("min", np.min)])
@pytest.mark.parametrize("axis", [None, (0,), (1,), (0, 1)])
@pytest.mark.parametrize("keepdims", [False, True])
def test_extrema_match_numpy_nans_included(name, reference, axis, keepdims):
    x = np.array([[1.0, np.nan, 3.0], [4.0, 5.0, -6.0]], dtype=np.float32)
    got = KERNELS[name](x, axis=axis, keepdims=keepdims)
    want = reference(x, axis=axis, keepdims=keepdims)
    assert isinstance(got, np.ndarray) and got.shape == np.shape(want) and got.dtype == x.dtype
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("name, expected", [("max", 9), ("min", -3)])
def test_extrema_keep_integer_dtypes(name, expected):
    labels = np.array([4, -3, 9, 0], dtype=np.int32)
    got = KERNELS[name](labels, axis=None, keepdims=False)
    assert got.dtype == np.int32 and got.shape == () and int(got) == expected
