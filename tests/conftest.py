"""Shared fixtures: a second device type, registered as a real (in-process) plugin."""
from __future__ import annotations

import types

import numpy as np
import pytest

from plugrad.core import plugins
from plugrad.hookspecs import API_VERSION, DeviceType, hookimpl


def make_plugin(name: str = "tst", priority: int = -1, available: bool = True):
    """A plugin module object exposing a numpy-backed device type called ``name``."""
    from plugrad.backends.numpy_backend.kernels import kernel_table

    def is_available() -> bool:
        if not available:
            raise RuntimeError(f"no {name} hardware in this machine")
        return True

    module = types.ModuleType(f"{name}_plugin")

    @hookimpl
    def plugrad_register(registry):
        registry.add_device_type(DeviceType(
            name=name, kernels=lambda: kernel_table(np), dtypes=("bool", "int32", "float32"),
            to_host=lambda a: a, from_host=lambda a, i: a, is_available=is_available,
            device_count=lambda: 2, priority=priority))

    module.PLUGRAD_API_VERSION = API_VERSION
    module.plugrad_register = plugrad_register
    return module


@pytest.fixture
def second_device():
    """Register a ``tst`` device type (two devices) for the test, then forget it."""
    record = plugins.register_plugin(make_plugin(), name="tst")
    assert record.status == "loaded", record.reason
    yield "tst"
    plugins.reset()
