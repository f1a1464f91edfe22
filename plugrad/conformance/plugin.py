"""The suite's pytest plugin: options, the backend under test, parametrisation, xfails, repros.

Load it with ``-p plugrad.conformance.plugin``: pytest reads options only from plugins it loads
up front, not from a conftest inside an installed package collected with ``--pyargs``::

    pytest -p plugrad.conformance.plugin --pyargs plugrad.conformance.tests \\
        --plugrad-backend numpy [--plugrad-device cpu0] [--plugrad-xfails FILE]
"""
from __future__ import annotations

import shlex
from typing import Any, Iterator

import pytest

from plugrad.conformance import xfails as xfail_file
from plugrad.conformance.checks import Case
from plugrad.conformance.repro import describe
from plugrad.conformance.spy import KernelSpy
from plugrad.conformance.table import records
from plugrad.conformance.target import Target, TargetError, load_plugin_modules, resolve

_TARGET = pytest.StashKey[Target]()
_XFAILS = pytest.StashKey[list]()
_REPRO = pytest.StashKey[str]()

#: fixture name -> the check its cases go through
CASE_FIXTURES = {
    "forward_case": "forward", "gradient_case": "gradient", "fused_forward_case": "fused-forward",
    "fused_gradient_case": "fused-gradient", "property_case": "property",
}


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("plugrad", "plugrad backend conformance")
    group.addoption("--plugrad-backend", metavar="NAME",
                    help="entry-point name of the backend plugin to test (e.g. numpy)")
    group.addoption("--plugrad-device", metavar="DEV",
                    help="device to test on (default: the backend's first device type, index 0)")
    group.addoption("--plugrad-xfails", metavar="FILE",
                    help="known gaps: test-id patterns with reasons (text, or TOML if *.toml)")
    group.addoption("--plugrad-plugin", metavar="MODULE", action="append", default=[],
                    help="register a backend plugin module by import path before testing")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "conformance: a plugrad backend conformance test")
    backend = config.getoption("--plugrad-backend")
    if not backend:
        return
    try:
        load_plugin_modules(config.getoption("--plugrad-plugin"))
        config.stash[_TARGET] = resolve(backend, config.getoption("--plugrad-device"))
    except TargetError as exc:
        raise pytest.UsageError(str(exc)) from None
    path = config.getoption("--plugrad-xfails")
    try:
        config.stash[_XFAILS] = xfail_file.load(path) if path else []
    except xfail_file.XfailError as exc:
        raise pytest.UsageError(str(exc)) from None


def target_of(config: pytest.Config) -> Target:
    target = config.stash.get(_TARGET, None)
    if target is None:
        raise pytest.UsageError("the plugrad conformance suite needs a backend: pass "
                                "--plugrad-backend NAME (e.g. numpy), or run "
                                "'python -m plugrad.conformance --backend NAME'")
    return target


def pytest_report_header(config: pytest.Config) -> list[str]:
    target = config.stash.get(_TARGET, None)
    if target is None:
        return []
    return [f"plugrad conformance: {target.describe()}",
            f"  dtypes: {', '.join(target.dtypes)}; gradients in {target.grad_dtype}"]


def _cases(target: Target, check: str) -> list[Case]:
    declared = set(target.dtypes)
    made: list[Case] = []
    for record in records():
        if check == "property":
            if record.check is not None:
                made += [Case(record, d, None, check) for d in record.dtypes if d in declared]
            continue
        if record.reference is None and check in ("forward", "gradient"):
            continue
        if record.samples is None:
            continue
        if check == "forward":
            dtypes = [d for d in record.dtypes if d in declared]
        elif check == "gradient":
            grad_dtype = target.grad_dtype  # None: the backend declares no float dtype
            dtypes = [d for d in record.dtypes if d == grad_dtype] if record.grad else []
        else:
            from plugrad.core.registry import OPS

            op = OPS[record.op]
            if op.primitive or not target.native(record.op):
                continue
            dtypes = [d for d in record.dtypes if d in declared and d.startswith("float")]
            if check == "fused-gradient":
                # Without a vjp of its own the op decomposes while recording, kernel or not.
                usable = record.grad and op.vjp is not None
                dtypes = [target.grad_dtype] if usable and target.grad_dtype in dtypes else []
        for dtype in dtypes:
            for sample in record.make_samples(dtype):
                if not sample.dtypes_needed() <= declared:
                    continue
                if check in ("gradient", "fused-gradient") and not (
                        sample.grad and any(a.differentiable for _, a in sample.tensor_args())):
                    continue
                made.append(Case(record, dtype, sample, check))
    return made


_NOT_APPLICABLE = {
    "fused-forward": "the backend implements no fused kernel for a composite op; composite ops "
                     "run through their decompositions, which test_forward checks",
    "fused-gradient": "the backend implements no fused kernel for a composite op (or declares "
                      "no float dtype for gradients)",
    "gradient": "the backend declares neither float64 nor float32, so no gradient is checked",
}


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    for fixture, check in CASE_FIXTURES.items():
        if fixture in metafunc.fixturenames:
            cases = _cases(target_of(metafunc.config), check)
            if cases:
                metafunc.parametrize(fixture, cases, ids=[c.id for c in cases])
            else:
                reason = _NOT_APPLICABLE.get(check, "no case applies to this backend")
                metafunc.parametrize(fixture, [pytest.param(None, marks=pytest.mark.skip(
                    reason=reason))], ids=["not-applicable"])
    if "declared_dtype" in metafunc.fixturenames:
        dtypes = target_of(metafunc.config).dtypes
        metafunc.parametrize("declared_dtype", dtypes, ids=list(dtypes))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    entries = config.stash.get(_XFAILS, [])
    for item in items:
        if entries:
            entry = xfail_file.match(entries, item.name, item.nodeid)
            if entry is not None:
                item.add_marker(pytest.mark.xfail(reason=f"{entry.reason} ({entry.where})",
                                                  strict=True))


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    unused = [e for e in config.stash.get(_XFAILS, []) if e.hits == 0]
    if unused:
        terminalreporter.section("plugrad xfails matching no test")
        for entry in unused:
            terminalreporter.line(f"{entry.where}: {entry.pattern}")


@pytest.fixture(scope="session")
def target(pytestconfig: pytest.Config) -> Target:
    """The backend and device under test."""
    return target_of(pytestconfig)


@pytest.fixture
def device(target: Target) -> Iterator[Any]:
    """The device under test, made the default device for the test's duration."""
    from plugrad.core.device import using_device

    with using_device(target.device.logical):
        yield target.device


@pytest.fixture
def spy(device: Any) -> Iterator[KernelSpy]:
    """Every kernel call on the device, checked against the kernel contract."""
    with KernelSpy(device) as watcher:
        yield watcher


@pytest.fixture
def repro(request: pytest.FixtureRequest, target: Target):
    """Call ``repro(case)`` so a failure of this test prints how to reproduce it."""

    def remember(case: Case) -> None:
        extra = ""
        xfails = request.config.getoption("--plugrad-xfails")
        plugin_modules = request.config.getoption("--plugrad-plugin")
        extra += "".join(f" --plugin {m}" for m in plugin_modules)
        if xfails:
            extra += f" --xfails {xfails}"
        request.node.stash[_REPRO] = describe(case, target.backend, target.spec, extra,
                                              plugin_modules)

    return remember


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Any:
    report = yield
    if report.failed:
        text = item.stash.get(_REPRO, None) or _rerun_only(item)
        if text:
            report.sections.append(("plugrad repro", text))
    return report


def _rerun_only(item: pytest.Item) -> str | None:
    """For tests not built from an op case (devices, dtypes): the device and the rerun command."""
    target = item.config.stash.get(_TARGET, None)
    if target is None or not item.nodeid.split("::")[0].endswith(
            ("test_devices.py", "test_dtypes.py", "test_backend.py")):
        return None
    command = (f"python -m plugrad.conformance --backend {target.backend} --device "
               f"{target.spec}")
    extra = "".join(f" --plugin {m}" for m in item.config.getoption("--plugrad-plugin"))
    return (f"device:  {target.spec} (backend {target.backend!r}, dtypes "
            f"{', '.join(target.dtypes)})\n"
            f"rerun:   {command}{extra} -k {shlex.quote(item.name)}")
