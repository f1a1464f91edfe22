"""The cupy backend where there is no GPU: CI machines and laptops.

Covered for real: with CuPy absent (a subprocess whose import system refuses ``cupy``), with CuPy
installed but no CUDA driver (where CuPy is installed), and the plugin's wiring that needs no
device - the entry point, lazy imports, availability and priority, and a kernel table that
covers every primitive. The GPU itself is exercised by ``tests/test_cupy_gpu.py``.
"""
from __future__ import annotations

import importlib.util
import inspect
import os
import re
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest

import plugrad
from plugrad import Tensor
from plugrad.backends.cupy_backend import plugin as cupy_plugin
from plugrad.backends.numpy_backend import plugin as numpy_plugin
from plugrad.core import device as devices
from plugrad.core import plugins
from plugrad.core.registry import OPS

ROOT = Path(__file__).resolve().parents[1]
HAS_CUPY = importlib.util.find_spec("cupy") is not None

# Makes ``import cupy`` fail exactly as it does where CuPy is not installed.
HIDE_CUPY = """
import sys

class _NoCupy:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in ("cupy", "cupyx", "cupy_backends"):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, _NoCupy())
"""


def _gpu_present() -> bool:
    if not HAS_CUPY:
        return False
    code = "import cupy; print(cupy.cuda.runtime.getDeviceCount())"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    return done.returncode == 0 and done.stdout.strip() not in ("", "0")


GPU_PRESENT = _gpu_present()


@pytest.fixture(scope="module")
def checkout_env(tmp_path_factory) -> dict[str, str]:
    """An environment whose plugrad entry points are this checkout's ``pyproject.toml``.

    plugrad may be installed from another checkout (an editable install elsewhere); a
    ``dist-info`` written from this pyproject, first on the path, makes discovery see what this
    checkout declares, exactly as ``pip install .`` would.
    """
    tomllib = pytest.importorskip("tomllib")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    folder = tmp_path_factory.mktemp("entry_points")
    info = folder / f"plugrad-{plugrad.__version__}.dist-info"
    info.mkdir()
    info.joinpath("METADATA").write_text(
        f"Metadata-Version: 2.1\nName: plugrad\nVersion: {plugrad.__version__}\n")
    lines = []
    for group, entries in project["entry-points"].items():
        lines.append(f"[{group}]")
        lines += [f"{name} = {target}" for name, target in entries.items()]
    info.joinpath("entry_points.txt").write_text("\n".join(lines) + "\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLUGRAD_")}
    env["PYTHONPATH"] = os.pathsep.join([str(folder), str(ROOT), env.get("PYTHONPATH", "")])
    return env


def _run(env: dict[str, str], code: str, hide_cupy: bool) -> str:
    source = (HIDE_CUPY if hide_cupy else "") + code
    done = subprocess.run([sys.executable, "-c", source], capture_output=True, text=True,
                          env=env, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    return done.stdout


INFO = "from plugrad.cli.info import report; print(report())"


# -- the entry point and lazy imports ---------------------------------------------------------
def test_pyproject_registers_the_backend_and_the_cuda_extra():
    tomllib = pytest.importorskip("tomllib")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    backends = project["entry-points"]["plugrad.backends"]
    assert backends["cupy"] == "plugrad.backends.cupy_backend.plugin"
    assert backends["numpy"] == "plugrad.backends.numpy_backend.plugin"
    assert project["optional-dependencies"]["cuda"] == ["cupy-cuda12x>=13"]


def test_import_plugrad_and_the_plugin_module_import_no_cupy(checkout_env):
    code = ("import sys, plugrad, plugrad.backends.cupy_backend.plugin\n"
            "print(sorted(m for m in sys.modules if m.partition('.')[0] in "
            "('cupy', 'cupyx', 'cupy_backends')))")
    assert _run(checkout_env, code, hide_cupy=False).strip() == "[]"


# -- CuPy absent ------------------------------------------------------------------------------
def test_without_cupy_info_says_not_installed_and_how_to_install_it(checkout_env):
    out = _run(checkout_env, INFO, hide_cupy=True)
    backends = out.split("backends:")[1].split("devices:")[0]
    # Registered, but its library is absent: "not installed" with the command, not "loaded".
    lines = backends.splitlines()
    cupy = next(i for i, line in enumerate(lines) if line.split()[:1] == ["cupy"])
    assert lines[cupy].split()[1:3] == ["not", "installed"], lines[cupy]
    assert lines[cupy + 1].split() == ["reason:", "No", "module", "named", "'cupy';", "pip",
                                       "install", "'plugrad[cuda]'"]
    assert any(line.split()[:2] == ["numpy", "loaded"] for line in lines)
    gpu = next(line for line in out.splitlines() if line.strip().startswith("gpu ")
               and "backend 'cupy'" in line)
    assert "unavailable: ModuleNotFoundError: No module named 'cupy'" in gpu
    assert "xpux resolves to: cpu" in out


def test_without_cupy_xpux_is_the_cpu_and_gpu_requests_explain_why(checkout_env):
    code = """
import plugrad
from plugrad import Tensor
from plugrad.core import device
t = Tensor([1.0, 2.0]) * 3
print(device.what_is_xpu(), t.device, t.device.physical, t.numpy().tolist())
print(plugrad.is_cuda_available(), plugrad.get_device_count("gpu"))
try:
    Tensor([1.0], device="gpu0")
except RuntimeError as exc:
    print("error:", exc)
"""
    lines = _run(checkout_env, code, hide_cupy=True).splitlines()
    assert lines[0] == "cpu xpux:0 cpu0 [3.0, 6.0]"
    assert lines[1] == "False 0"
    assert lines[2].startswith("error: device 'gpu0': device type 'gpu' (backend 'cupy') is "
                               "unavailable: ModuleNotFoundError: No module named 'cupy'")
    assert "available device types: cpu" in lines[2]


# -- CuPy installed, no CUDA driver ------------------------------------------------------------
@pytest.mark.skipif(not HAS_CUPY, reason="cupy is not installed (pip install cupy-cuda12x "
                                         "installs without a GPU)")
@pytest.mark.skipif(GPU_PRESENT, reason="a GPU is present: tests/test_cupy_gpu.py covers it")
def test_with_cupy_but_no_driver_info_reports_cupys_cuda_error(checkout_env):
    out = _run(checkout_env, INFO, hide_cupy=False)
    gpu = next(line for line in out.splitlines() if line.strip().startswith("gpu ")
               and "backend 'cupy'" in line)
    reason = gpu.split("unavailable: ", 1)[1]
    assert reason.startswith("CUDARuntimeError: ") or reason.startswith("RuntimeError: CuPy")
    assert "xpux resolves to: cpu" in out
    # The kernel table still builds (nothing compiles before a kernel runs): full coverage.
    coverage = next(line for line in out.splitlines() if line.strip().startswith("gpu ")
                    and "native" in line)
    native, total = re.search(r"(\d+)/(\d+) native, 0 decomposed, 0 missing", coverage).groups()
    assert native == total


# -- the plugin's logic, with CuPy's runtime stood in for -------------------------------------
def _fake_cupy(count: int | Exception) -> types.SimpleNamespace:
    def get_device_count():
        if isinstance(count, Exception):
            raise count
        return count

    runtime = types.SimpleNamespace(getDeviceCount=get_device_count)
    return types.SimpleNamespace(cuda=types.SimpleNamespace(runtime=runtime),
                                 ndarray=type("ndarray", (), {}))


@pytest.fixture
def explicit_backends(monkeypatch):
    """numpy and cupy registered by hand (no entry-point scan), forgotten afterwards."""
    monkeypatch.setenv("PLUGRAD_AUTOLOAD_BACKENDS", "0")
    plugins.reset()
    plugins.register_plugin(numpy_plugin, name="numpy")
    record = plugins.register_plugin(cupy_plugin, name="cupy")
    assert record.status == "loaded" and record.device_types == ["gpu"], record.reason
    yield plugins.device_types()["gpu"]
    plugins.reset()  # the next device resolution discovers again, with the environment restored


def test_device_type_declaration():
    gpu = cupy_plugin.make_device_type()
    assert gpu.name == "gpu" and gpu.priority > 0 and gpu.array_types == ()
    assert gpu.dtype_names() == ["bool", "int8", "uint8", "int16", "int32", "float16",
                                 "float32", "float64"]
    # CuPy arrays report NumPy dtypes: the table maps each name to numpy.dtype(name).
    assert all(gpu.dtypes[name] == np.dtype(name) for name in gpu.dtype_names())
    assert gpu.device_scope is not None and callable(gpu.kernels) and gpu.inplace
    assert callable(gpu.namespace)  # array_api_compat.cupy, imported on first use


def test_a_visible_gpu_makes_xpux_resolve_to_gpu(explicit_backends, monkeypatch):
    fake = _fake_cupy(2)
    monkeypatch.setattr(cupy_plugin, "_cupy", fake)
    devices.clear_cache()
    assert devices.what_is_xpu() == "gpu"
    assert plugrad.is_cuda_available() and plugrad.get_device_count("gpu") == 2
    assert plugrad.get_device_count("xpu") == 2
    # CuPy arrays are recognised once CuPy proved usable, not at registration.
    assert explicit_backends.array_types == (fake.ndarray,)


@pytest.mark.parametrize("count, reason", [
    (0, "RuntimeError: CuPy is installed but sees no CUDA device"),
    (RuntimeError("cudaErrorNoDevice: no CUDA-capable device is detected"),
     "RuntimeError: cudaErrorNoDevice: no CUDA-capable device is detected"),
])
def test_an_unusable_cuda_leaves_xpux_on_the_cpu(explicit_backends, monkeypatch, count, reason):
    monkeypatch.setattr(cupy_plugin, "_cupy", _fake_cupy(count))
    devices.clear_cache()
    assert devices.what_is_xpu() == "cpu"
    assert not plugrad.is_cuda_available()
    assert str(Tensor([1.0]).device) == "xpux:0"
    with pytest.raises(RuntimeError, match=r"device 'gpux'.*unavailable: " + reason):
        Tensor([1.0], device="gpux")
    assert explicit_backends.array_types == ()


# -- the kernel table (real CuPy, no GPU: building it compiles and allocates nothing) ----------
@pytest.fixture(scope="module")
def cupy_tables():
    if not HAS_CUPY:
        pytest.skip("cupy is not installed (pip install cupy-cuda12x installs without a GPU)")
    import cupy

    from plugrad.backends.cupy_backend import kernels
    from plugrad.backends.numpy_backend.kernels import kernel_table

    generic = kernel_table(cupy)
    return kernels.kernel_table(cupy), kernels.overrides(cupy, generic), generic


def test_the_table_implements_every_primitive(cupy_tables):
    table, _, _ = cupy_tables
    primitives = {name for name, op in OPS.items() if op.primitive}
    assert primitives - set(table) == set()
    assert set(table) <= set(OPS)  # kernels for undeclared ops are left out, not warned about
    assert all(callable(kernel) for kernel in table.values())


def test_the_overrides_are_in_the_table_and_keep_the_kernel_signatures(cupy_tables):
    table, overrides, generic = cupy_tables
    assert {"index_add", "scatter_add", "uniform", "normal", "sigmoid", "softmax",
            "logsoftmax"} <= set(overrides)
    for name, kernel in overrides.items():
        assert callable(kernel)
        assert kernel.__module__.startswith("plugrad.backends.cupy_backend."), name
        if name in OPS:
            assert table[name].__module__ == kernel.__module__, name
        # The kernel contract is the generic kernel's (or the op's decomposition's) signature.
        reference = generic.get(name) or (OPS[name].decomposition if name in OPS else None)
        if reference is not None:
            assert _signature(kernel) == _signature(reference), name


def test_generic_kernels_are_shared_not_copied(cupy_tables):
    table, overrides, _ = cupy_tables
    shared = [name for name in table if name not in overrides]
    assert {"add", "matmul", "getitem", "relu", "sum"} <= set(shared)
    for name in shared:
        kernel = table[name]
        module = getattr(kernel, "__module__", None) or type(kernel).__module__
        # the generic Array API kernels or the NumPy-like ones, or CuPy's own functions used
        # directly (through array_api_compat's namespace where CuPy's differ from the standard)
        assert module.startswith(("plugrad.backends.generic.", "plugrad.backends.numpy_backend.",
                                  "cupy", "array_api_compat.")), (name, module)


def _signature(kernel) -> tuple[int, tuple[str, ...]]:
    """(positional arrays, keyword attributes): what the dispatcher passes a kernel."""
    try:
        parameters = inspect.signature(kernel).parameters.values()
    except (TypeError, ValueError):  # a CuPy ufunc
        return (-1, ())
    positional = sum(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) for p in parameters)
    variadic = any(p.kind is p.VAR_POSITIONAL for p in parameters)
    keywords = tuple(sorted(p.name for p in parameters if p.kind is p.KEYWORD_ONLY))
    return (-1 if variadic else positional, keywords)


def test_several_gpus_run_each_kernel_on_its_inputs_device():
    from plugrad.backends.cupy_backend.kernels import on_input_device

    entered: list[int] = []

    class Device:
        def __init__(self, index):
            self.index = index

        def __enter__(self):
            entered.append(self.index)

        def __exit__(self, *exc):
            entered.append(-self.index)

    class Array:
        def __init__(self, index):
            self.device = Device(index)

    def kernel(*arrays, **attrs):
        return len(entered), attrs

    wrapped = on_input_device(kernel)
    assert wrapped(Array(3), Array(3), axis=1) == (1, {"axis": 1})
    assert entered == [3, -3]
    entered.clear()
    assert wrapped(shape=(2,)) == (0, {"shape": (2,)})  # creation: plugrad scopes the device
    assert entered == []


def test_from_host_keeps_scalars_off_the_copy_path(monkeypatch):
    calls: list[tuple] = []

    class Device:
        def __init__(self, index):
            calls.append(("device", index))

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return None

    fake = types.SimpleNamespace(
        cuda=types.SimpleNamespace(Device=Device),
        full=lambda shape, value, dtype: calls.append(("full", shape, value, dtype)) or "f",
        asarray=lambda array: calls.append(("asarray", array.shape)) or "a")
    monkeypatch.setattr(cupy_plugin, "_cupy", fake)
    assert cupy_plugin._from_host(np.array(2.5, np.float32), 1) == "f"
    assert cupy_plugin._from_host(np.ones((2, 3), np.float32), 0) == "a"
    assert calls == [("device", 1), ("full", (), np.float32(2.5), np.dtype("float32")),
                     ("device", 0), ("asarray", (2, 3))]
