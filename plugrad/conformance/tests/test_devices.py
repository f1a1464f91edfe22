"""Device behaviour: allocation, host and cross-device transfers, the mixed-device error, xpux."""
from __future__ import annotations

import numpy as np
import pytest

from plugrad import functional as F
from plugrad.core import plugins
from plugrad.core.backend import DeviceType
from plugrad.core.device import Device, _probe, available_device_types, get_device
from plugrad.core.tensor import Tensor


def _host_device() -> Device:
    """A stand-in second device in host memory, for when the machine offers no other one."""
    host = DeviceType(name="conformancehost", kernels={}, dtypes=("float32",),
                      to_host=lambda a: a, from_host=lambda a, index: a,
                      array_types=(np.ndarray,))
    host.backend = "conformance"
    return Device("conformancehost0:0", host, 0, 0)


def _other_device(target) -> Device:
    """Another physical device: the backend's second one, another backend's, or a host stand-in."""
    device_type = target.device_type
    count = _probe(device_type)[2]
    if count > 1:
        index = 1 if target.device.index != 1 else 0
        return get_device(f"{device_type.name}{index}")
    for other in available_device_types():
        if other is not device_type and "float32" in other.dtypes:
            return get_device(f"{other.name}0")
    return _host_device()


def test_device_type_is_available(target):
    """is_available() holds and device_count() covers the index under test."""
    device_type = target.device_type
    assert device_type.is_available(), (
        f"device type {device_type.name!r}: is_available() returned False while testing it")
    count = device_type.device_count()
    assert isinstance(count, int) and count > target.device.index, (
        f"device type {device_type.name!r}: device_count() returned {count!r}; expected an int "
        f"above the tested index {target.device.index}")


def test_allocation_on_device(target, device):
    """Tensors made from host data, by creation ops and by kernels live on the device."""
    physical = device.physical
    made = [Tensor([1.0, 2.0], device=device), F.zeros((2, 2), device=device),
            F.arange(3, device=device)]
    made.append(made[0] + made[0])
    for t in made:
        assert t.device.physical == physical, (
            f"allocation: tensor lives on {t.device.physical}; expected {physical}")
        kinds = target.device_type.array_types
        if kinds:
            assert isinstance(t._data, kinds), (
                f"allocation: device data is a {type(t._data).__name__}; expected one of the "
                f"device type's array_types {kinds}")
    assert str(Tensor(1.0, device=device).device) == device.logical


@pytest.mark.parametrize("dtype", ["float32", "int32", "bool"])
def test_host_round_trip(target, device, dtype):
    """Host -> device -> host gives back the values, dtype and shape; copies are independent."""
    if dtype not in target.dtypes:
        pytest.skip(f"{dtype} is not declared by the backend")
    host = (np.arange(12).reshape(3, 4) % 3).astype(dtype)
    t = Tensor(host, dtype=dtype, device=device)
    host[0, 0] = 1 - host[0, 0]  # the tensor must not alias the caller's array
    back = t.numpy()
    assert back.dtype == np.dtype(dtype) and back.shape == (3, 4)
    expected = (np.arange(12).reshape(3, 4) % 3).astype(dtype)
    assert np.array_equal(back, expected), (
        f"round trip: got {back.tolist()}; expected {expected.tolist()}")
    back[1, 1] = 1 - back[1, 1]
    assert np.array_equal(t.numpy(), expected), "round trip: numpy() must return a copy"


def test_transfer_between_devices(target, device):
    """Tensor.to another device and back keeps values and dtype; each copy lives where asked."""
    other = _other_device(target)
    source = Tensor(np.array([[1.5, -2.0], [0.25, 4.0]], dtype=np.float32), device=device)
    moved = source.to(other)
    assert moved.device.physical == other.physical, (
        f"Tensor.to({other.logical}): result lives on {moved.device.physical}")
    back = moved.to(device)
    assert back.device.physical == device.physical
    assert back.dtype == np.float32
    assert np.array_equal(back.numpy(), source.numpy()), (
        f"transfer {device.logical} -> {other.logical} -> {device.logical}: got "
        f"{back.numpy().tolist()}; expected {source.numpy().tolist()}")


def test_cross_device_error_names_both_devices(target, device):
    """An op whose inputs live on two devices fails, naming both; nothing moves implicitly."""
    other = _other_device(target)
    x = Tensor([1.0, 2.0], device=device)
    y = Tensor([3.0, 4.0], device=device).to(other)
    with pytest.raises(RuntimeError) as info:
        F.add(x, y)
    message = str(info.value)
    assert device.logical in message and other.logical in message, (
        f"cross-device error must name both devices ({device.logical}, {other.logical}); "
        f"got: {message}")


def test_xpux_resolves_to_the_best_available_type(target, device):
    """xpux picks the available device type of highest priority; tensors print 'xpux:0'."""
    available = [t for t in plugins.device_types().values() if _probe(t)[0]]
    best = max(t.priority for t in available)
    candidates = {t.name for t in available if t.priority == best}
    resolved = get_device("xpux")
    assert resolved.type.name in candidates, (
        f"xpux resolved to {resolved.type.name!r}; expected one of {sorted(candidates)} "
        f"(priority {best})")
    if target.device_type.name in candidates and len(candidates) == 1:
        assert resolved.type is target.device_type
    t = Tensor([1.0], device="xpux")
    assert "device=xpux:0" in repr(t), f"xpux tensor repr: {t!r}"
    assert t.device.physical == f"{resolved.type.name}0"


def test_device_strings(target):
    """'<type>x' is index 0, ':<stream>' is parsed, and an index past the count is refused."""
    name = target.device_type.name
    assert get_device(f"{name}x").physical == f"{name}0"
    assert get_device(f"{name}0:1").stream == 1
    count = _probe(target.device_type)[2]
    with pytest.raises(ValueError, match="out of range"):
        get_device(f"{name}{count}")
