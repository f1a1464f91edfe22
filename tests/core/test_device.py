"""Device strings, resolution, defaults and the cross-device error."""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

import plugrad
from plugrad import Tensor
from plugrad.core import device as devices


@pytest.mark.parametrize("spec, printed", [
    ("xpux", "xpux:0"), ("cpux", "cpux:0"), ("cpu0", "cpu0:0"), ("cpu0:2", "cpu0:2"),
    ("xpu0", "xpu0:0"), ("cpu", "cpux:0"),
])
def test_device_strings_resolve_and_print_their_logical_name(spec, printed):
    t = Tensor([1.0], device=spec)
    assert str(t.device) == printed
    assert repr(t).endswith(f"device={printed})")
    assert t.device.physical == "cpu0"


@pytest.mark.parametrize("spec", ["gpu", "cpu-1", "0cpu", "xpu:x", "CPU0", ""])
def test_invalid_device_strings_show_the_grammar(spec):
    with pytest.raises((ValueError, RuntimeError)) as info:
        Tensor([1.0], device=spec)
    if isinstance(info.value, ValueError):
        assert "xpux" in str(info.value) and "cpu0" in str(info.value)


def _cuda_devices() -> int:
    """CUDA devices as CuPy itself counts them, independently of plugrad."""
    try:
        import cupy

        return cupy.cuda.runtime.getDeviceCount()
    except Exception:
        return 0


# What a machine without a GPU must answer; a GPU machine's answers are in test_cupy_gpu.py.
without_gpu = pytest.mark.skipif(_cuda_devices() > 0, reason="a CUDA GPU is present")


@without_gpu
def test_unknown_type_and_out_of_range_index_are_explained():
    with pytest.raises(RuntimeError, match=r"'gpu0'.*available device types: cpu"):
        Tensor([1.0], device="gpu0")
    with pytest.raises(ValueError, match=r"index 3 is out of range.*1 device"):
        Tensor([1.0], device="cpu3")


@without_gpu
def test_gpu_state_without_cuda():
    assert plugrad.is_cuda_available() is False
    assert plugrad.get_device_count("gpu") == 0
    assert plugrad.get_device_count("cpu") == 1
    assert devices.what_is_xpu() == "cpu"


def test_set_default_device_and_scope():
    assert plugrad.get_default_device() == "xpux"
    with plugrad.using_device("cpu0"):
        assert str(Tensor(1.0).device) == "cpu0:0"
    assert str(Tensor(1.0).device) == "xpux:0"
    with pytest.raises(ValueError):
        plugrad.set_default_device("nonsense!")
    assert plugrad.get_default_device() == "xpux"


def test_default_device_from_the_environment():
    env = dict(os.environ, PLUGRAD_DEFAULT_DEVICE="cpu0")
    out = subprocess.run([sys.executable, "-c", "import plugrad; print(plugrad.Tensor(1.0))"],
                         env=env, capture_output=True, text=True, check=True).stdout
    assert out.strip() == "Tensor(1.0, device=cpu0:0)"


def test_import_does_not_discover_plugins_or_touch_devices():
    code = ("import plugrad, plugrad.core.plugins as p, sys; "
            "print(p._records is None, 'cupy' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.split() == ["True", "False"]


def test_mixed_devices_name_both(second_device):
    a = Tensor([1.0, 2.0], device="cpu0")
    b = Tensor([1.0, 2.0], device="tst1")
    with pytest.raises(RuntimeError, match=r"add: .*cpu0:0.*tst1:0.*Tensor.to"):
        a + b
    moved = b.to("cpu0")
    assert str(moved.device) == "cpu0:0" and (a + moved).tolist() == [2.0, 4.0]
    assert str(a.to("tst0").device) == "tst0:0"


def test_xpux_prefers_the_highest_priority_available_type():
    from plugrad.core import plugins
    from tests.conftest import make_plugin

    try:
        plugins.register_plugin(make_plugin("acc", priority=10), name="acc")
        assert devices.what_is_xpu() == "acc"
        t = Tensor([1.0])
        assert str(t.device) == "xpux:0" and t.device.physical == "acc0"
        plugins.reset()
        plugins.register_plugin(make_plugin("acc", priority=10, available=False), name="acc")
        assert devices.what_is_xpu() == "cpu"
        with pytest.raises(RuntimeError, match="no acc hardware"):
            Tensor([1.0], device="acc0")
    finally:
        plugins.reset()


def test_unsupported_dtype_on_a_device_type_names_it(second_device):
    with pytest.raises(TypeError, match=r"backend 'tst'.*float16"):
        Tensor([1.0], dtype="float16", device="tst0")
    with pytest.raises(TypeError, match=r"astype: backend 'tst'.*float64"):
        Tensor([1.0], device="tst0").astype("float64")
    assert np.asarray(Tensor([1], device="tst0")).dtype == np.int32
