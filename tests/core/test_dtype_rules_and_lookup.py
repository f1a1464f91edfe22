"""Weak scalar typing, dtype and dtype-kind errors, op lookup and the rank error's hint: public
behaviour the mutation check found untested. Expected values follow MegEngine's rules."""
import numpy as np
import pytest

import plugrad as P
from plugrad.core.registry import OPS, lookup

F = P.functional


@pytest.mark.parametrize("dtype, scalar, want", [
    ("bool", 1, np.int32), ("bool", 1.5, np.float32), ("bool", True, np.bool_),
    ("int8", 1, np.int8), ("int32", 2, np.int32), ("int32", 0.5, np.float32),
    ("float16", 2, np.float16), ("float64", 0.5, np.float64),
])
def test_a_python_scalar_takes_the_tensor_s_dtype_where_it_fits(dtype, scalar, want):
    x = P.Tensor(np.array([1, 0]).astype(dtype), dtype=dtype)
    out = x + scalar
    assert out.dtype == want
    np.testing.assert_array_equal(out.numpy(), (np.array([1.0, 0.0]) + scalar).astype(want))


def test_an_unknown_dtype_name_is_a_type_error_naming_it():
    with pytest.raises(TypeError, match=r"^dtype: 'float31' is not a dtype; expected a name "
                                        r"such as 'float32'$"):
        P.Tensor([1.0], dtype="float31")


def test_lookup_resolves_aliases_and_suggests_close_names():
    assert lookup("equal") is OPS["eq"]
    assert lookup("concatenate") is OPS["concat"]
    with pytest.raises(KeyError, match=r"no op is called 'mull'; did you mean mul\b"):
        lookup("mull")
    with pytest.raises(KeyError, match=r"no op is called 'qqqzzz'; 'plugrad info' lists them"):
        lookup("qqqzzz")


def test_a_missing_batch_axis_gets_a_hint_and_other_ranks_do_not():
    w = P.Tensor(np.zeros((2, 1, 3, 3), dtype=np.float32))
    with pytest.raises(ValueError, match=r"^conv2d: expected a 4-D input \(N, C, H, W\); got "
                                         r"shape \(1, 4, 4\); add a batch axis, e\.g\. "
                                         r"F\.expand_dims\(x, 0\)$"):
        F.conv2d(P.Tensor(np.zeros((1, 4, 4), dtype=np.float32)), w)
    with pytest.raises(ValueError, match=r"^conv2d: expected a 4-D input \(N, C, H, W\); got "
                                         r"shape \(4, 4\)$"):
        F.conv2d(P.Tensor(np.zeros((4, 4), dtype=np.float32)), w)


def test_a_wrong_dtype_kind_names_the_kind_expected_and_the_fix():
    with pytest.raises(TypeError, match=r"^abs: expected numeric tensors; got bool; cast bools "
                                        r"with astype\('int32'\) first$"):
        F.abs(P.Tensor([True]))
    with pytest.raises(TypeError, match=r"^logical_not: expected bool tensors; got float32; "
                                        r"compare first"):
        F.logical_not(P.Tensor([1.0]))
    with pytest.raises(TypeError, match=r"^logical_and: expected bool tensors; got float32; "):
        F.logical_and(P.Tensor([1.0]), P.Tensor([0.0]))


def test_a_float_overflowing_the_target_dtype_names_its_largest_finite_magnitude():
    # inf is already infinite: the message reports the finite value that overflowed.
    with pytest.raises(ValueError, match=r"^Tensor: a value of magnitude 1e\+300 overflows "
                                         r"float32 \(largest 3\.40282\d*e\+38\); pass "
                                         r"dtype='float64'"):
        P.Tensor(np.array([1.0, -1e300, np.inf]), dtype="float32")
