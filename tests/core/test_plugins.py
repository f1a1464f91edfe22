"""Plugin discovery and registration: broken plugins are refused, attributed and contained.

Plugins here are real modules written to a temporary folder and offered to plugrad through fake
entry points (with a distribution name and version), so discovery runs its real code path in
this process. ``tests/backends/test_example_plugin.py`` installs plugins with pip for the same
cases.
"""
from __future__ import annotations

import importlib
import textwrap
from types import SimpleNamespace

import numpy as np
import pytest

import plugrad
from plugrad.cli.info import op_report, report
from plugrad.core import plugins
from plugrad.core.device import get_device
from plugrad.hookspecs import API_VERSION, DeviceType, PluginError
from tests.helpers import ROOT

HEADER = """\
import numpy as np
from plugrad.hookspecs import API_VERSION, DeviceType, hookimpl
from plugrad.backends.numpy_backend.kernels import kernel_table

PLUGRAD_API_VERSION = API_VERSION


def declare(registry, **fields):
    settings = dict(name="fake", kernels=lambda: kernel_table(np), dtypes=("float32",),
                    to_host=lambda a: a, from_host=lambda a, i: a, array_types=(np.ndarray,))
    settings.update(fields)
    registry.add_device_type(DeviceType(**settings))
"""

MODULES = {
    "fake_import_error": 'raise ImportError("libfakegpu.so: cannot open shared object file")\n',
    "fake_wrong_api": """
        from plugrad.hookspecs import API_VERSION, hookimpl

        PLUGRAD_API_VERSION = API_VERSION + 1

        @hookimpl
        def plugrad_register(registry):
            raise AssertionError("must not be called for another API version")
        """,
    "fake_text_api": """
        PLUGRAD_API_VERSION = "1"
        """,
    "fake_no_api": """
        from plugrad.hookspecs import hookimpl

        @hookimpl
        def plugrad_register(registry):
            raise AssertionError("must not be called without an API version")
        """,
    "fake_old_api_hook": """
        from plugrad.hookspecs import hookimpl

        @hookimpl
        def plugrad_api_version():
            return 2

        @hookimpl
        def plugrad_register(registry):
            raise AssertionError("must not be called without an API version")
        """,
    "fake_duplicate": HEADER + """
@hookimpl
def plugrad_register(registry):
    declare(registry, name="cpu")
""",
    "fake_register_raises": HEADER + """
@hookimpl
def plugrad_register(registry):
    raise RuntimeError("driver version 1.2 is too old")
""",
    "fake_typo": HEADER + """
def kernels():
    table = kernel_table(np)
    table["sofmax"] = table.pop("softmax")
    return table


@hookimpl
def plugrad_register(registry):
    declare(registry, name="typo", kernels=kernels)
""",
    "fake_not_callable": HEADER + """
@hookimpl
def plugrad_register(registry):
    declare(registry, name="notcallable", kernels={**kernel_table(np), "add": 3})
""",
    "fake_bad_hook": """
        from plugrad.hookspecs import API_VERSION, hookimpl

        PLUGRAD_API_VERSION = API_VERSION

        @hookimpl
        def plugrad_register(reg):
            return None
        """,
    "fake_good": HEADER + """
@hookimpl
def plugrad_register(registry):
    declare(registry, name="good")
""",
    "fake_partial": HEADER + """
def kernels():
    table = kernel_table(np)
    del table["relu"], table["sum"]  # a composite to decompose, a primitive gone missing
    return table


@hookimpl
def plugrad_register(registry):
    declare(registry, name="partial", kernels=kernels)
""",
}

#: A bad field -> (its declaration, what the message must say: field, value given, expected).
BAD_DECLARATIONS = {
    "name": ('name="Bad-Name"', "DeviceType: name: got 'Bad-Name'; expected lowercase letters"),
    "xpu": ('name="xpu"', "DeviceType: name: got 'xpu'; expected lowercase letters"),
    "dtypes-str": ('dtypes="float32"', "DeviceType 'fake': dtypes: got 'float32'; expected a "
                                       "tuple of dtype names"),
    "dtypes-unknown": ('dtypes=("float32", "complex64")', "(unknown: ['complex64'])"),
    "to_host": ("to_host=None", "DeviceType 'fake': to_host: got None; expected a callable "
                                "(required when there is no namespace)"),
    "kernels": ("kernels=[1, 2]", "DeviceType 'fake': kernels: got [1, 2]; expected a dict"),
    "array_types": ("array_types=np.ndarray", "DeviceType 'fake': array_types: got <class "
                                              "'numpy.ndarray'>; expected a tuple of classes"),
    "priority": ('priority="high"', "DeviceType 'fake': priority: got 'high'; expected an int"),
    "inplace": ('inplace="yes"', "DeviceType 'fake': inplace: got 'yes'; expected True or False"),
    "device_scope": ("device_scope=3", "DeviceType 'fake': device_scope: got 3; expected a "
                                       "callable or None"),
    "namespace": ("namespace=np.random", "DeviceType 'fake': namespace: got 'numpy.random'; "
                                         "expected an Array API namespace; it lacks abs, add, "
                                         "arange, argmax, argmin, argsort,"),
}

DIST = ("plugrad-fake-backends", "9.9.1")


class FakeEntryPoint:
    """Just what discovery reads from an importlib.metadata EntryPoint."""

    def __init__(self, name: str, value: str, dist: tuple[str, str] | None = DIST):
        self.name, self.value = name, value
        self.dist = SimpleNamespace(metadata={"Name": dist[0]}, version=dist[1]) if dist else None

    def load(self):
        return importlib.import_module(self.value)


@pytest.fixture(scope="module")
def plugin_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("fake_plugins")
    for name, body in MODULES.items():
        (folder / f"{name}.py").write_text(textwrap.dedent(body) if body.startswith("\n") else body)
    for key, (field, _) in BAD_DECLARATIONS.items():
        module = f"fake_decl_{key.replace('-', '_')}"
        body = f"\n\n@hookimpl\ndef plugrad_register(registry):\n    declare(registry, {field})\n"
        (folder / f"{module}.py").write_text(HEADER + body)
    return folder


@pytest.fixture
def discover(monkeypatch, plugin_dir):
    """Rediscover plugins with the installed ones plus the fake entry points given."""
    monkeypatch.syspath_prepend(str(plugin_dir))
    real = plugins.entry_points

    def run(*fake: FakeEntryPoint) -> dict[str, plugins.BackendRecord]:
        monkeypatch.setattr(plugins, "entry_points",
                            lambda group: [*real(group=group), *fake])
        plugins.reset()
        return {record.name: record for record in plugins.backend_records()}

    yield run
    plugins.reset()  # the next resolution rediscovers the real entry points only


def _cpu_still_works() -> None:
    out = plugrad.Tensor([1.0, 2.0], device="cpu0") * 3
    assert out.device.physical == "cpu0"
    assert np.array_equal(out.numpy(), [3.0, 6.0])


def test_import_error_is_recorded_with_distribution_and_location(discover):
    records = discover(FakeEntryPoint("fakeimport", "fake_import_error"))
    record = records["fakeimport"]
    assert record.status == "failed"
    assert record.reason.startswith("import failed: ImportError: libfakegpu.so")
    assert "fake_import_error.py:1" in record.reason
    text = report()
    assert "plugrad-fake-backends 9.9.1" in text and "libfakegpu.so" in text
    _cpu_still_works()


def test_other_api_version_is_refused_before_registering(discover):
    records = discover(FakeEntryPoint("fakeapi", "fake_wrong_api"),
                       FakeEntryPoint("faketext", "fake_text_api"))
    assert records["fakeapi"].status == "failed"
    assert (f"built for backend API version {API_VERSION + 1}, but this plugrad speaks version "
            f"{API_VERSION}") in records["fakeapi"].reason
    assert records["faketext"].status == "failed"
    assert records["faketext"].reason == (f"PLUGRAD_API_VERSION is '1'; expected the int "
                                          f"{API_VERSION}")
    _cpu_still_works()


def test_a_plugin_without_the_version_constant_is_told_what_to_write(discover):
    records = discover(FakeEntryPoint("fakenoapi", "fake_no_api"),
                       FakeEntryPoint("fakeoldhook", "fake_old_api_hook"))
    assert records["fakenoapi"].status == "failed"
    assert records["fakenoapi"].reason == (
        f"declares no API version; add the module-level constant 'PLUGRAD_API_VERSION = "
        f"{API_VERSION}' (the version the plugin is written for)")
    old = records["fakeoldhook"]
    assert old.status == "failed"
    assert "with the plugrad_api_version hook, which plugrad no longer calls" in old.reason
    assert f"'PLUGRAD_API_VERSION = {API_VERSION}'" in old.reason
    text = report()  # plugrad info names the plugin next to the reason
    line = next(line for line in text.splitlines() if line.strip().startswith("fakenoapi"))
    assert "failed" in line and "plugrad-fake-backends 9.9.1" in line
    assert "declares no API version" in text
    _cpu_still_works()


def test_third_party_cannot_take_a_builtin_device_type(discover):
    # 'aaa' sorts before 'numpy': built-in backends must still register first.
    records = discover(FakeEntryPoint("aaa", "fake_duplicate"))
    assert records["numpy"].status == "loaded"
    record = records["aaa"]
    assert record.status == "failed"
    assert "backend plugin 'aaa' (plugrad-fake-backends 9.9.1)" in record.reason
    assert "device type 'cpu' is already registered by backend 'numpy' (plugrad " in record.reason
    assert get_device("cpu0").type.backend == "numpy"
    _cpu_still_works()


def test_entry_point_name_taken_by_another_distribution(discover):
    records = discover(FakeEntryPoint("numpy", "fake_good", ("plugrad-impostor", "1.0")))
    assert records["numpy"].source.startswith("plugrad ")
    clash = records["numpy@plugrad-impostor"]
    assert clash.status == "failed"
    assert "entry-point name 'numpy' is already used by plugrad" in clash.reason
    _cpu_still_works()


def test_exception_in_register_and_invalid_hook_are_attributed(discover):
    records = discover(FakeEntryPoint("fakeraise", "fake_register_raises"),
                       FakeEntryPoint("fakehook", "fake_bad_hook"))
    assert records["fakeraise"].reason == ("plugrad_register raised RuntimeError: driver version "
                                           "1.2 is too old")
    assert records["fakehook"].reason.startswith("invalid hook implementation")
    assert "reg" in records["fakehook"].reason
    _cpu_still_works()


@pytest.mark.parametrize("key", sorted(BAD_DECLARATIONS))
def test_invalid_declarations_are_refused_with_the_problem(discover, key):
    module = f"fake_decl_{key.replace('-', '_')}"
    record = discover(FakeEntryPoint("fakedecl", module))["fakedecl"]
    assert record.status == "failed"
    assert record.reason.startswith("plugrad_register raised PluginError: backend plugin "
                                     "'fakedecl' (plugrad-fake-backends 9.9.1): DeviceType")
    assert BAD_DECLARATIONS[key][1] in record.reason
    _cpu_still_works()


@pytest.mark.parametrize("key", sorted(BAD_DECLARATIONS))
def test_a_bad_field_fails_the_same_way_built_directly_or_in_a_plugin(discover, key):
    """DeviceType checks itself when built; the plugin layer only adds whose declaration it was."""
    settings = dict(name="fake", kernels={}, dtypes=("float32",), to_host=lambda a: a,
                    from_host=lambda a, i: a, array_types=(np.ndarray,))
    field, value = BAD_DECLARATIONS[key][0].split("=", 1)
    settings[field] = eval(value, {"np": np})
    with pytest.raises(PluginError) as direct:
        DeviceType(**settings)
    assert BAD_DECLARATIONS[key][1] in str(direct.value)
    module = f"fake_decl_{key.replace('-', '_')}"
    record = discover(FakeEntryPoint("fakedecl", module))["fakedecl"]
    assert record.reason == ("plugrad_register raised PluginError: backend plugin 'fakedecl' "
                             f"(plugrad-fake-backends 9.9.1): {direct.value}")
    assert plugins.plugin_manager().get_plugin("fakedecl") is None


def test_every_loaded_plugin_is_in_one_plugin_manager(discover):
    records = discover(FakeEntryPoint("fakegood", "fake_good"),
                       FakeEntryPoint("fakeraise", "fake_register_raises"))
    manager = plugins.plugin_manager()
    names = {name for name, _ in manager.list_name_plugin()}
    loaded = {name for name, record in records.items() if record.status == "loaded"}
    assert {"numpy", "fakegood"} <= loaded
    assert names == loaded  # failed plugins leave the manager as they found it
    assert manager.get_plugin("fakegood").__name__ == "fake_good"
    assert manager.project_name == "plugrad"


def test_unknown_kernel_name_is_logged_with_a_suggestion(discover, caplog):
    records = discover(FakeEntryPoint("faketypo", "fake_typo"))
    assert records["faketypo"].status == "loaded"
    with caplog.at_level("WARNING", logger="plugrad"):
        device = get_device("typo0")
    [record] = [r for r in caplog.records if r.name == "plugrad.core.registry"]
    assert record.levelname == "WARNING"
    message = record.getMessage()
    assert "backend 'faketypo' (plugrad-fake-backends 9.9.1), device type 'typo'" in message
    assert "'sofmax' (did you mean 'softmax'?)" in message
    assert "softmax" not in device.kernels and "sofmax" not in device.kernels
    x = plugrad.Tensor([[1.0, 3.0]], device="typo0")
    assert np.allclose(plugrad.functional.softmax(x, axis=1).numpy(), [[0.11920292, 0.88079708]])


def test_non_callable_kernel_is_an_attributed_error(discover):
    discover(FakeEntryPoint("fakenc", "fake_not_callable"))
    with pytest.raises(TypeError, match=r"backend 'fakenc' \(plugrad-fake-backends 9\.9\.1\), "
                                        r"device type 'notcallable': kernels must be callables"):
        get_device("notcallable0")
    assert "kernels failed to load" in report()
    _cpu_still_works()


def test_device_of_a_failed_plugin_names_the_reason(discover):
    discover(FakeEntryPoint("fakeimport", "fake_import_error"))
    with pytest.raises(RuntimeError) as info:
        get_device("fakegpu0")
    message = str(info.value)
    assert "no backend provides device type 'fakegpu'" in message
    assert "backend 'fakeimport' (plugrad-fake-backends 9.9.1) failed to load" in message


def test_info_lists_distribution_version_device_types_and_coverage(discover):
    discover(FakeEntryPoint("fakegood", "fake_good"), FakeEntryPoint("fakeapi", "fake_wrong_api"))
    text = report()
    lines = text.splitlines()
    good = next(line for line in lines if line.strip().startswith("fakegood"))
    assert "loaded" in good and "plugrad-fake-backends 9.9.1" in good
    assert "device types: good" in good
    numpy_line = next(line for line in lines if line.strip().startswith("numpy "))
    assert f"plugrad {plugrad.__version__}" in numpy_line and "device types: cpu" in numpy_line
    failed = lines.index(next(line for line in lines if line.strip().startswith("fakeapi")))
    assert "failed" in lines[failed]
    assert "reason: built for backend API version" in lines[failed + 1]
    from plugrad.core.registry import OPS

    assert f"good   {len(OPS)}/{len(OPS)} native, 0 decomposed, 0 missing" in text


def test_import_plugrad_never_scans_plugins_or_touches_devices():
    """Discovery is lazy: a fresh interpreter imports plugrad without touching entry points or
    importing a device library."""
    import subprocess
    import sys

    code = ("import plugrad, plugrad.core.plugins as p, sys; "
            "print(p._records is None, 'cupy' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["True", "False"], "plugins were scanned or cupy imported"


def test_info_op_shows_the_declaration_and_where_each_device_type_runs_it(discover):
    discover(FakeEntryPoint("fakepartial", "fake_partial"))
    relu = op_report("relu").splitlines()
    assert relu[0] == "relu (composite: a backend may fuse it, otherwise its decomposition runs)"
    assert "  kernel:        relu(x)" in relu
    assert "  shape rule:    plugrad.ops._rules:unary.<locals>.rule (relu_rule)" in relu
    assert "  vjp:           plugrad.ops.activation:_relu_vjp" in relu
    assert "  decomposition: plugrad.ops.activation:_relu" in relu
    by_type = {line.split()[0]: line for line in relu[relu.index("kernels:") + 1:]}
    assert by_type["partial"].split()[2:] == ["decomposed", "plugrad.ops.activation:_relu"]
    # With numba, the numpy backend's relu is a compiled loop; without, NumPy's, wrapped so that
    # a 0-d result stays an array (the wrapper bears its name).
    from plugrad.backends.numpy_backend import compiled

    assert by_type["cpu"].split()[2:] == (
        ["native", "plugrad.backends.numpy_backend.compiled:kernels.<locals>.relu"]
        if compiled.available() else
        ["native", "plugrad.backends.numpy_backend.kernels:_array_result.<locals>.run", "(relu)"])
    total = op_report("sum")
    assert "partial (fakepartial) MISSING" in total and "reference:     plugrad.ops.reduction:" \
        "_reference.<locals>.reference" in total
    assert "  attributes:    axis: tuple[int, ...] | None, keepdims: bool" in total.splitlines()


def test_a_second_plugin_under_a_taken_name_is_refused():
    from tests.conftest import make_plugin

    plugins.reset()
    try:
        first_module = make_plugin("first")
        first = plugins.register_plugin(first_module, name="dup")
        second = plugins.register_plugin(make_plugin("second"), name="dup")
        assert first.status == "loaded"
        assert second.status == "failed"
        assert second.reason == ("another backend plugin is already loaded under the name 'dup'; "
                                 "register this one under another name")
        assert plugins.plugin_manager().get_plugin("dup") is first_module
        assert "second" not in plugins.device_types() and "first" in plugins.device_types()
    finally:
        plugins.reset()
