"""DeviceType.device_scope: creation kernels run with their target device made current.

Backends whose arrays are allocated on a "current" device (CuPy) need this for ``full``,
``uniform`` and the other creation ops, which get no input array to take the device from.
"""
from __future__ import annotations

import contextlib
import types

import numpy as np
import pytest

import plugrad
from plugrad import Tensor
from plugrad.core import plugins
from plugrad.hookspecs import API_VERSION, DeviceType, hookimpl


def _scoped_plugin(entered: list[int], device_scope=None):
    from plugrad.backends.numpy_backend.kernels import kernel_table

    table = kernel_table(np)
    base_full = table["full"]
    current: list[int] = []
    created: list[int | None] = []

    def full(*, shape, value, dtype):
        # Records which device was current while the kernel ran (None: no scope entered).
        created.append(current[-1] if current else None)
        return base_full(shape=shape, value=value, dtype=dtype)

    table["full"] = full

    @contextlib.contextmanager
    def scope(index: int):
        entered.append(index)
        current.append(index)
        try:
            yield
        finally:
            current.pop()

    module = types.ModuleType("scoped_plugin")

    @hookimpl
    def plugrad_register(registry):
        registry.add_device_type(DeviceType(
            name="scp", kernels=lambda: table, dtypes=("bool", "int32", "float32"),
            to_host=lambda a: a, from_host=lambda a, i: a, device_count=lambda: 3,
            priority=-1, device_scope=scope if device_scope is None else device_scope))

    module.PLUGRAD_API_VERSION = API_VERSION
    module.plugrad_register = plugrad_register
    return module, created


@pytest.fixture
def scoped():
    entered: list[int] = []
    module, created = _scoped_plugin(entered)
    record = plugins.register_plugin(module, name="scp")
    assert record.status == "loaded", record.reason
    yield entered, created
    plugins.reset()


def test_creation_kernels_run_inside_the_target_devices_scope(scoped):
    entered, created = scoped
    out = plugrad.functional.zeros((2, 3), device="scp2")
    assert out.shape == (2, 3) and str(out.device) == "scp2:0"
    assert entered == [2]
    assert created == [2]  # the kernel saw device 2 as current


def test_ops_with_inputs_do_not_enter_the_scope(scoped):
    entered, _ = scoped
    x = Tensor([1.0, 2.0], device="scp1")
    entered.clear()
    y = x + x
    np.testing.assert_array_equal(y.numpy(), [2.0, 4.0])
    assert entered == []


def test_backends_without_a_scope_run_creation_kernels_directly():
    out = plugrad.functional.zeros((2,), device="cpu0")
    np.testing.assert_array_equal(out.numpy(), [0.0, 0.0])


def test_a_non_callable_scope_is_refused_at_registration():
    module, _ = _scoped_plugin([], device_scope="gpu")
    record = plugins.register_plugin(module, name="scp_bad")
    try:
        assert record.status == "failed"
        assert "device_scope" in record.reason and "'scp'" in record.reason
    finally:
        plugins.reset()


def test_optimizer_updates_run_inside_their_parameters_device_scope(scoped):
    # In-place updates run on a backend's current device (CuPy): step() must enter each
    # parameter's device, and only once per group and device, not per parameter.
    import plugrad.optimizer as optim

    entered, _ = scoped
    weights = [plugrad.Parameter(np.ones(3, np.float32), device="scp2") for _ in range(2)]
    bias = plugrad.Parameter(np.ones(3, np.float32), device="scp1")
    for p in (*weights, bias):
        p.grad = Tensor(np.full(3, 2.0, np.float32), device=p.device)
    opt = optim.SGD([*weights, bias], lr=0.5, momentum=0.9)
    opt.step()  # also creates the momentum buffers, each inside its own device's scope
    entered.clear()
    opt.step()
    assert entered == [2, 1]
    for p in (*weights, bias):  # 1 - 0.5 * 2, then - 0.5 * (0.9 * 2 + 2)
        np.testing.assert_allclose(p.numpy(), np.full(3, -1.9), rtol=1e-6)
