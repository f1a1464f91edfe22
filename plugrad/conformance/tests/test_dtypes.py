"""The dtypes a backend declares really work: create, cast to every other, add; others refused."""
from __future__ import annotations

import numpy as np
import pytest

from plugrad import functional as F
from plugrad.core.backend import KNOWN_DTYPES
from plugrad.core.tensor import Tensor


def _values(dtype: str) -> np.ndarray:
    """Small non-negative values every dtype holds exactly (so casts are exact too)."""
    if dtype == "bool":
        return np.array([[True, False, True], [False, False, True]])
    return np.array([[0, 1, 2], [3, 1, 0]]).astype(dtype)


def test_create(declared_dtype, device):
    """Tensor(data, dtype) and full() give that dtype, on the device, with exact values."""
    expected = _values(declared_dtype)
    t = Tensor(expected, dtype=declared_dtype, device=device)
    assert np.dtype(t.dtype).name == declared_dtype, (
        f"create: Tensor(..., dtype={declared_dtype!r}) has dtype {np.dtype(t.dtype).name}")
    assert np.array_equal(t.numpy(), expected), (
        f"create {declared_dtype}: got {t.numpy().tolist()}; expected {expected.tolist()}")
    filled = F.full((2, 2), 1, dtype=declared_dtype, device=device)
    assert np.dtype(filled.dtype).name == declared_dtype
    assert np.array_equal(filled.numpy(), np.ones((2, 2), dtype=declared_dtype))


def test_cast_to_every_declared_dtype(declared_dtype, target, device):
    """astype from this dtype to each declared dtype, exactly as NumPy converts the values."""
    source = Tensor(_values(declared_dtype), dtype=declared_dtype, device=device)
    wrong = []
    for other in target.dtypes:
        out = F.astype(source, other)
        expected = _values(declared_dtype).astype(other)
        if np.dtype(out.dtype).name != other or not np.array_equal(out.numpy(), expected):
            wrong.append(f"to {other}: got {np.dtype(out.dtype).name} {out.numpy().tolist()}; "
                         f"expected {expected.tolist()}")
    assert not wrong, f"cast from {declared_dtype}: " + "; ".join(wrong)


def test_add(declared_dtype, device):
    """x + y keeps the dtype and gives NumPy's values (logical or for bool)."""
    x = _values(declared_dtype)
    y = x[::-1].copy()
    out = Tensor(x, dtype=declared_dtype, device=device) + \
        Tensor(y, dtype=declared_dtype, device=device)
    expected = np.add(x, y)
    assert np.dtype(out.dtype).name == declared_dtype, (
        f"add {declared_dtype}: result dtype {np.dtype(out.dtype).name}; "
        f"expected {declared_dtype}")
    assert np.array_equal(out.numpy(), expected), (
        f"add {declared_dtype}: got {out.numpy().tolist()}; expected {expected.tolist()}")


def test_declared_dtypes_are_known(target):
    """Declared dtypes are names plugrad knows (registration checks this too)."""
    unknown = sorted(set(target.dtypes) - KNOWN_DTYPES)
    assert not unknown, f"device type {target.device_type.name!r} declares unknown {unknown}"


def test_undeclared_dtype_is_refused(target, device):
    """Asking for a dtype the backend does not declare fails, naming the backend and dtype."""
    candidates = ("int64", "float16", "float64", "int8", "uint8", "int16", "int32", "bool")
    undeclared = [d for d in candidates if d not in target.dtypes]
    if not undeclared:
        pytest.skip("the backend declares every dtype plugrad tests")
    with pytest.raises(TypeError) as info:
        Tensor([1, 0], dtype=undeclared[0], device=device)
    message = str(info.value)
    assert target.backend in message and undeclared[0] in message, message
