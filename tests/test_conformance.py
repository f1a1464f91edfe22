"""The conformance suite: it certifies every installed backend, and it catches broken ones.

The suite runs in subprocesses (``python -m plugrad.conformance`` and the pytest-plugin form), so
its pytest session is independent of this one. Broken backends are plugin modules written to a
temporary folder and registered with ``--plugin``; each breaks one rule the suite must report.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import plugrad
from plugrad.conformance import contract, repro, table
from plugrad.conformance.table import OpRecord, Sample
from plugrad.core import plugins, registry
from plugrad.core.device import available_device_types

ROOT = Path(plugrad.__file__).resolve().parents[1]

# A development backend: the numpy kernels, broken as the environment variable BREAK says.
DEV_PLUGIN = '''
import dataclasses
import os

import numpy as np

from plugrad import functional as F
from plugrad.backends.numpy_backend.kernels import kernel_table
from plugrad.core.registry import OPS
from plugrad.hookspecs import DeviceType, hookimpl

BREAK = os.environ.get("BREAK", "").split(",")


def kernels():
    table = kernel_table(np)
    if "values" in BREAK:
        exp = table["exp"]
        table["exp"] = lambda x: exp(x) * 1.001
    if "missing" in BREAK:
        del table["sin"], table["gather"], table["pad"]
    if "fused" in BREAK:
        softmax = table["softmax"]
        table["softmax"] = lambda x, *, axis: softmax(x, axis=axis) * 1.01
    if "typo" in BREAK:
        table["sigmod"] = table.pop("sigmoid")
    if "view" in BREAK:
        table["copy"] = lambda x: x[...]
    if "signnan" in BREAK:
        sign = table["sign"]
        table["sign"] = lambda x: np.nan_to_num(sign(x))
    if "boolmatmul" in BREAK:
        matmul = table["matmul"]
        table["matmul"] = lambda x, y: matmul(x.astype(np.int32), y.astype(np.int32)) \
            if x.dtype == np.bool_ else matmul(x, y)
    return table


if "vjp" in BREAK:  # a wrong derivative: d/dx sin(x) = sin(x)
    OPS["sin"] = dataclasses.replace(OPS["sin"], vjp=lambda ctx, g: (g * F.sin(ctx.inputs[0]),))


PLUGRAD_API_VERSION = 2


@hookimpl
def plugrad_register(registry):
    registry.add_device_type(DeviceType(
        name="dev", kernels=kernels, dtypes=("bool", "int32", "float32", "float64"),
        to_host=lambda a: a, from_host=lambda a, i: a, array_types=(np.ndarray,), priority=-9,
        # "immutable": declared unwritable, yet its update kernels write in place
        inplace="immutable" not in BREAK))
'''


def _available_backends() -> list[str]:
    """Installed backends (entry points) with a device type usable on this machine."""
    usable = {t.backend for t in available_device_types()}
    names = [r.name for r in plugins.backend_records()
             if r.status == "loaded" and r.distribution is not None and r.name in usable]
    return names or ["numpy"]


def run(*args: str, plugin_dir: Path | None = None, env: dict | None = None,
        module: str = "plugrad.conformance") -> subprocess.CompletedProcess:
    paths = [str(ROOT)] + ([str(plugin_dir)] if plugin_dir else [])
    clean = {k: v for k, v in os.environ.items() if not k.startswith("PLUGRAD_")}
    clean.update(PYTHONPATH=os.pathsep.join(paths), **(env or {}))
    return subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True,
                          env=clean, cwd=plugin_dir or ROOT, timeout=600)


def counts(output: str) -> dict[str, int]:
    summary = output.strip().splitlines()[-1]
    return {word: int(n) for n, word in re.findall(r"(\d+) (\w+)", summary)}


@pytest.fixture(scope="module")
def dev(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("devplugin")
    (folder / "devplugin.py").write_text(DEV_PLUGIN)
    return folder


def run_dev(dev: Path, breaks: str, *args: str) -> subprocess.CompletedProcess:
    return run("--plugin", "devplugin", "--backend", "devplugin", "-q", *args, plugin_dir=dev,
               env={"BREAK": breaks})


@pytest.mark.parametrize("backend", _available_backends())
def test_suite_passes_on_every_available_backend(backend):
    done = run("--backend", backend, "-q")
    assert done.returncode == 0, done.stdout[-5000:] + done.stderr[-2000:]
    found = counts(done.stdout)
    assert found.get("passed", 0) > 1000 and "failed" not in found, found


def test_pytest_plugin_form_with_pyargs():
    done = run("-p", "plugrad.conformance.plugin", "--pyargs", "plugrad.conformance.tests",
               "--plugrad-backend", "numpy", "-q", "-k", "matmul or devices", module="pytest")
    assert done.returncode == 0, done.stdout[-3000:]
    assert counts(done.stdout)["passed"] > 40


def test_unchanged_dev_backend_passes(dev):
    done = run_dev(dev, "", "-k", "exp or softmax or sin or test_backend")
    assert done.returncode == 0, done.stdout[-3000:]


@pytest.fixture(scope="module")
def broken_run(dev) -> subprocess.CompletedProcess:
    """One run of a backend broken four ways, each failure checked by a test below."""
    return run_dev(dev, "values,vjp,fused,typo", "-k",
                   "test_forward[exp-float32 or test_gradient[sin- or "
                   "test_fused_forward[softmax-float64-rows] or test_kernel_table")


def test_wrong_values_fail_with_a_repro(broken_run):
    assert broken_run.returncode == 1
    out = broken_run.stdout
    # Every exp sample but the empty one (no values to differ) fails.
    assert len(re.findall(r"^FAILED \S+test_forward\[exp-float32-", out, re.MULTILINE)) == 5
    assert re.search(r"exp: \d+ of \d+ output value\(s\) differ from the float64 reference "
                     r"beyond rtol=2e-05, atol=1e-06; worst at index", out)
    assert "op:      exp (record 'exp', check forward)" in out
    assert "inputs:  x0: shape (2, 3) float32 contiguous" in out
    assert ("rerun:   python -m plugrad.conformance --backend devplugin --device dev0 --plugin "
            "devplugin -k 'test_forward[exp-float32-matrix]'") in out
    assert ("repro.show(\"forward\", \"exp-float32-matrix\", device=\"dev0\", "
            "plugins=[\"devplugin\"])") in out


def test_wrong_gradient_is_caught_by_finite_differences(broken_run):
    out = broken_run.stdout
    assert len(re.findall(r"^FAILED \S+test_gradient\[sin-float64-", out, re.MULTILINE)) == 5
    assert re.search(r"sin: \d+ of \d+ gradient of input 0 value\(s\) differ from central "
                     r"differences of the float64 reference", out)


def test_fused_kernel_is_checked_against_its_decomposition(broken_run):
    out = broken_run.stdout
    assert re.search(r"^FAILED \S+test_fused_forward\[softmax-float64-rows\]", out, re.MULTILINE)
    assert "differ from the decomposition of 'softmax' into primitives" in out


def test_misspelt_kernel_name_fails_with_a_suggestion(broken_run):
    assert "'sigmod' is not an op plugrad knows (did you mean 'sigmoid'?)" in broken_run.stdout


def test_missing_primitives_give_one_failure_listing_all(dev):
    done = run_dev(dev, "missing", "-k", "test_backend or sin- or gather- or pad- or getitem-")
    assert done.returncode == 1
    found = counts(done.stdout)
    assert found["failed"] == 1 and found["passed"] > 40, found
    assert ("backend 'devplugin' (devplugin), device type 'dev': 3 required primitive(s) have "
            "no kernel: gather, pad, sin;") in done.stdout
    skipped = re.findall(r"SKIPPED \[\d+\] .*: blocked: backend 'devplugin' lacks the required "
                         r"primitive\(s\)? '?(\w+)'?", done.stdout)
    assert set(skipped) == {"gather", "pad", "sin"}


def test_xfail_file_text_and_strict_unexpected_pass(dev, tmp_path):
    gaps = tmp_path / "gaps.txt"
    gaps.write_text("# known gaps of the dev backend\n"
                    "test_forward[exp-float32-*]   # exp is off by 0.1% (issue 7)\n"
                    "test_forward[add-float32-0d]  # believed broken, but passes\n"
                    "test_forward[nonexistent-*]\n")
    done = run_dev(dev, "values", "--xfails", str(gaps), "-k",
                   "test_forward[exp-float32 and not empty or test_forward[add-float32-0d]")
    found = counts(done.stdout)
    assert found["xfailed"] == 5 and found["failed"] == 1, found
    assert "[XPASS(strict)] believed broken, but passes" in done.stdout
    assert "plugrad xfails matching no test" in done.stdout
    assert f"{gaps}:4: test_forward[nonexistent-*]" in done.stdout
    assert done.returncode == 1


def test_xfail_file_toml(dev, tmp_path):
    gaps = tmp_path / "gaps.toml"
    gaps.write_text('[[xfail]]\ntest = "test_forward[exp-*]"\nreason = "exp off by 0.1%"\n')
    done = run_dev(dev, "values", "--xfails", str(gaps), "-k", "test_forward[exp and not empty")
    assert done.returncode == 0, done.stdout[-3000:]
    assert counts(done.stdout)["xfailed"] == 10
    bad = tmp_path / "bad.toml"
    bad.write_text("[[xfail]]\nreason = 'no pattern'\n")
    refused = run_dev(dev, "", "--xfails", str(bad))
    assert refused.returncode == 4
    assert "[[xfail]] entry 1 needs a string 'test' pattern" in refused.stderr


def test_bad_options_exit_4_with_the_choices():
    unknown = run("--backend", "nosuch")
    assert unknown.returncode == 4
    assert "--backend 'nosuch': no backend plugin of that name; installed backends:" in \
        unknown.stderr
    assert "numpy (plugrad " in unknown.stderr
    wrong = run("--backend", "numpy", "--device", "cpu7")
    assert wrong.returncode == 4 and "index 7 is out of range" in wrong.stderr


def test_kernel_table_command_prints_every_op():
    done = run("--kernel-table")
    assert done.returncode == 0
    for name in registry.OPS:
        shown = contract.signature(name).replace("|", "\\|")
        assert f"| `{name}` | `{shown}` |" in done.stdout


def test_every_op_has_a_record_and_a_declaration():
    assert table.uncovered_ops() == []
    assert contract.undeclared_ops() == []


def test_a_new_op_is_reported_until_it_has_a_record_and_its_declaration_is_the_contract():
    registry.primitive("conformance_probe", "x, *, scale: float", rule=lambda x, scale: x,
                       reference=lambda x, *, scale: x * scale, differentiable=False,
                       doc="x times `scale`")
    try:
        assert table.uncovered_ops() == ["conformance_probe"]
        assert "| `conformance_probe` | `conformance_probe(x, *, scale: float)` | x times " \
               "`scale` |" in contract.markdown_table(primitive=True)
        record = OpRecord("conformance_probe", lambda x, scale: x * scale, None,
                          lambda rng, dtype: [Sample("one")], ("float32",), grad=False)
        assert record.reference(np.float64(2.0), scale=3.0) == 6.0  # the declared reference
        table.register(record)
        assert table.uncovered_ops() == [] and contract.undeclared_ops() == []
    finally:
        del registry.OPS["conformance_probe"]
        table._records.pop("conformance_probe", None)


def test_repro_show_rebuilds_a_case(capsys):
    case = repro.find_case("forward", "floor_div-float32-broadcast")
    assert case.record.op == "floor_div" and case.sample.label == "broadcast"
    repro.show("forward", "add-float32-broadcast", device="cpu0")
    out = capsys.readouterr().out
    assert "add on cpu0 =" in out and "float64 reference =" in out
    with pytest.raises(KeyError, match="no conformance case 'add-float32-nosuch'"):
        repro.find_case("forward", "add-float32-nosuch")


def test_edge_cases_the_op_records_miss_are_caught(dev):
    """A copy that is a view, sign(NaN) == 0, a bool matmul widened to int32, and in-place
    update kernels on a backend declared immutable: the op records pass them all."""
    assert run_dev(dev, "", "-k", "test_edges").returncode == 0
    done = run_dev(dev, "view,signnan,boolmatmul,immutable", "-k", "test_edges")
    out = done.stdout
    assert done.returncode == 1, out[-3000:]
    assert "copy: the kernel returned a view of its input; expected new memory" in out
    assert "sign([nan, -0.0, -2.5, 3.0]): got [0.0, 0.0, -1.0, 1.0]" in out
    assert "matmul of a bool tensor: got (3, 3) int32; expected (3, 3) bool" in out
    for op in ("adagrad_update", "adam_update", "sgd_update"):
        assert (f"{op}: the kernel wrote into its input arrays [0, 2") in out
    assert "test_bool_inputs_follow_numpy[argmax" not in out.split("short test summary")[-1]
