"""What a kernel table gets wrong while every op record passes: bools where the Array API
standard takes only numbers, a copy that is a view, the sign of NaN, and update ops that write
into arrays the backend declared immutable or into the gradient."""
from __future__ import annotations

import numpy as np
import pytest

from plugrad import functional as F
from plugrad.core.dispatch import update
from plugrad.core.tensor import Tensor

_BOOLS = np.array([[True, False, True], [False, False, True], [True, True, False]])


def _needs(target, *dtypes: str) -> None:
    missing = [d for d in dtypes if d not in target.dtypes]
    if missing:
        pytest.skip(f"the backend declares no {', '.join(missing)}")


@pytest.mark.parametrize("op, reference", [
    ("argmax", lambda x: np.argmax(x, axis=1).astype(np.int32)),
    ("abs", np.abs),
    ("matmul", lambda x: np.matmul(x, x)),
])
def test_bool_inputs_follow_numpy(target, device, op, reference):
    """argmax, abs and matmul take bools as NumPy does (the standard refuses them), or the
    front end refuses them with a TypeError naming the op; never a kernel's own error."""
    _needs(target, "bool", "int32")
    x = Tensor(_BOOLS, dtype="bool", device=device)
    calls = {"argmax": lambda: F.argmax(x, axis=1), "abs": lambda: F.abs(x),
             "matmul": lambda: F.matmul(x, x)}
    try:
        out = calls[op]()
    except TypeError as exc:  # the front end may refuse bools, if it says so clearly
        assert str(exc).startswith(f"{op}:") and "bool" in str(exc), str(exc)
        return
    expected = reference(_BOOLS)
    assert np.dtype(out.dtype) == expected.dtype and out.shape == expected.shape, (
        f"{op} of a bool tensor: got {out.shape} {np.dtype(out.dtype).name}; expected "
        f"{expected.shape} {expected.dtype.name}")
    assert np.array_equal(out.numpy(), expected), (
        f"{op} of a bool tensor: got {out.numpy().tolist()}; expected {expected.tolist()}")


def test_copy_is_not_a_view(target, device):
    """The copy kernel returns new memory: writing the copy must never change the original."""
    _needs(target, "float32")
    x = Tensor(np.arange(6.0).reshape(2, 3), dtype="float32", device=device)
    y = F.copy(x)
    to_host = device.type.to_host
    assert y._data is not x._data, "copy: the kernel returned its input array"
    assert not np.shares_memory(np.asarray(to_host(x._data)), np.asarray(to_host(y._data))), (
        "copy: the kernel returned a view of its input; expected new memory "
        "(namespace.asarray(x, copy=True))")


def test_sign_of_nan_is_nan(target, device):
    dtypes = [d for d in ("float32", "float64") if d in target.dtypes]
    if not dtypes:
        pytest.skip("the backend declares no float32 or float64")
    x = Tensor(np.array([np.nan, -0.0, -2.5, 3.0]), dtype=dtypes[0], device=device)
    got = F.sign(x).numpy()
    assert np.isnan(got[0]) and np.array_equal(got[1:], [0.0, -1.0, 1.0]), (
        f"sign([nan, -0.0, -2.5, 3.0]): got {got.tolist()}; expected [nan, 0, -1, 1]")


UPDATES = {  # op: (float states, whether a step count follows them, attributes)
    "sgd_update": (1, False, dict(lr=0.1, momentum=0.9, nesterov=False, weight_decay=0.01)),
    "adam_update": (2, True, dict(lr=0.1, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.01,
                                  decoupled=True)),
    "adagrad_update": (1, True, dict(lr=0.1, lr_decay=0.0, eps=1e-10, weight_decay=0.0)),
}


@pytest.mark.parametrize("op", sorted(UPDATES))
def test_update_ops_write_only_where_allowed(target, device, op):
    """An update kernel stores new values into the parameter and its state; it never changes
    the gradient, and on a backend whose arrays are not writable (``inplace=False``) it never
    changes any input array."""
    _needs(target, "float32")
    n_state, counted, attrs = UPDATES[op]
    rng = np.random.default_rng(0)
    values = [rng.uniform(0.5, 1.5, (3, 4)).astype(np.float32) for _ in range(2 + n_state)]
    values += [np.array(0, np.int32)] * counted
    tensors = [Tensor(v, dtype=v.dtype, device=device) for v in values]
    arrays = [t._data for t in tensors]
    param, grad, *state = tensors
    update(op, tuple(tensors), (param, *state), **attrs)
    to_host = device.type.to_host
    assert np.array_equal(np.asarray(to_host(arrays[1])), values[1]), (
        f"{op}: the kernel wrote into the gradient")
    assert grad._data is arrays[1]
    assert not np.array_equal(param.numpy(), values[0]), f"{op}: the parameter did not change"
    if not device.type.inplace:
        changed = [i for i, (a, v) in enumerate(zip(arrays, values))
                   if not np.array_equal(np.asarray(to_host(a)), v)]
        assert not changed, (f"{op}: the kernel wrote into its input arrays {changed}, but "
                             f"the device type declares inplace=False; return new arrays")
