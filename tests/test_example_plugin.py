"""The example backend, installed for real with pip into a throwaway virtual environment.

A session fixture creates a venv (``tests/plugin_venv.py``) that sees this interpreter's
site-packages, installs ``examples/plugrad-ref-backend`` and the deliberately broken
``tests/fixtures/plugrad-broken-backends`` into it offline, and every check runs in a
subprocess of that venv's Python with this checkout first on ``PYTHONPATH``.
"""
from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pytest

import plugrad
from plugrad.core.registry import OPS
from tests.plugin_venv import ROOT, Venv, make_venv

EXAMPLE = ROOT / "examples" / "plugrad-ref-backend"
BROKEN = ROOT / "tests" / "fixtures" / "plugrad-broken-backends"
PRIMITIVES = sorted(name for name, op in OPS.items() if op.primitive)
COMPOSITES = sorted(name for name, op in OPS.items() if not op.primitive)


@pytest.fixture(scope="session")
def venv(tmp_path_factory) -> Venv:
    return make_venv(tmp_path_factory.mktemp("plugin-venv"), [EXAMPLE, BROKEN])


def test_example_is_an_array_api_namespace_in_under_60_lines():
    """The whole backend is array_api_strict declared in one short plugin file: no kernels of
    its own, no wrapper class, nothing of plugrad's own backends."""
    files = sorted(path.name for path in (EXAMPLE / "plugrad_ref").glob("*.py"))
    assert files == ["__init__.py", "plugin.py"]
    plugin = (EXAMPLE / "plugrad_ref" / "plugin.py").read_text()
    assert len(plugin.splitlines()) <= 60
    assert "import array_api_strict" in plugin and "kernels=" not in plugin
    assert "class " not in plugin and "plugrad.backends" not in plugin


def test_ref_is_discovered_by_plugrad_info(venv):
    done = venv.run("-m", "plugrad", "info")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    ref = next(line for line in lines if line.strip().startswith("ref "))
    assert re.search(r"ref\s+loaded\s+plugrad-ref-backend 0\.2\.0\s+device types: ref", ref), ref
    assert re.search(r"ref\s+backend 'ref'\s+priority -1\s+2 available", done.stdout)
    native = f"ref    {len(PRIMITIVES)}/{len(OPS)} native"
    assert f"{native}, {len(COMPOSITES)} decomposed, 0 missing" in done.stdout
    assert f"decomposed: {', '.join(COMPOSITES)}" in done.stdout


def test_ref_is_certified_by_the_conformance_suite(venv):
    """array_api_strict refuses anything outside the standard: 0 failures and no xfails file
    show plugrad's generic kernels and core stay inside it."""
    done = venv.run("-m", "plugrad.conformance", "--backend", "ref", "-q")
    summary = done.stdout.strip().splitlines()[-1]
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    passed = int(re.search(r"(\d+) passed", summary).group(1))
    assert passed > 2000, summary
    assert not re.search(r"failed|xfail|xpass|error", summary), summary


COMPARE_COMPOSITES = """
import json
import numpy as np
from plugrad import random
from plugrad.autodiff import GradManager
from plugrad.conformance.checks import materialize
from plugrad.conformance.table import Arg, records
from plugrad.core.device import get_device, using_device
from plugrad.core.registry import OPS
from plugrad.core.tensor import Tensor

ref, cpu = get_device("ref0"), get_device("cpu0")
report = {"native_on_ref": sorted(op for op in OPS if op in ref.kernels and
                                  not OPS[op].primitive), "compared": [], "mismatches": []}

def run(record, sample, device):
    random.seed(5)  # dropout draws its mask from the global generator
    with using_device(device.logical):
        inputs = [materialize(a, device) if isinstance(a, Arg) else a for a in sample.args]
        grads = [x for x, a in zip(inputs, sample.args) if isinstance(a, Arg) and a.differentiable]
        if not grads:  # the update ops: nothing to differentiate
            return record.fn(*inputs, **sample.kwargs).numpy(), []
        gm = GradManager().attach(grads)
        with gm:
            out = record.fn(*inputs, **sample.kwargs)
            seed = np.linspace(-1, 1, out.size).reshape(out.shape)
            gm.backward(out, Tensor(seed, dtype=out.numpy().dtype, device=device))
        return out.numpy(), [g.grad.numpy() for g in grads]

report["random"] = []
for record in records():
    if OPS[record.op].primitive or "float64" not in record.dtypes:
        continue
    if record.check is not None:  # random streams are each backend's own: nothing to compare
        report["random"].append(record.op)
        continue
    rtol, atol = record.tolerance("float64")
    grad_rtol, grad_atol = record.grad_tolerance("float64")
    for sample in record.make_samples("float64"):
        (out_ref, g_ref), (out_cpu, g_cpu) = run(record, sample, ref), run(record, sample, cpu)
        report["compared"].append(record.op)
        same = out_ref.shape == out_cpu.shape and np.allclose(out_ref, out_cpu, rtol, atol)
        same = same and all(np.allclose(a, b, grad_rtol, grad_atol) for a, b in zip(g_ref, g_cpu))
        if not same:
            report["mismatches"].append(f"{record.name}-{sample.label}")
print(json.dumps(report))
"""


def test_composites_run_through_decompositions_with_cpu_results(venv):
    """Every composite op on ref (no fused kernels) matches the numpy backend, with gradients."""
    done = venv.script(COMPARE_COMPOSITES)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["native_on_ref"] == []
    assert sorted(set(report["compared"]) | set(report["random"])) == COMPOSITES
    assert report["mismatches"] == [], report["mismatches"]


def test_xpux_resolves_to_ref_when_it_is_the_only_backend(venv):
    done = venv.script("""
        import plugrad
        import plugrad.device
        t = plugrad.Tensor([1.0, 2.0])
        print(t.device.physical, repr(t), plugrad.device.what_is_xpu())
        """, env={"PLUGRAD_BACKENDS": "ref"})
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[0] == "ref0"
    assert "device=xpux:0" in done.stdout and done.stdout.split()[-1] == "ref"


def test_broken_plugins_are_reported_and_attributed(venv):
    done = venv.run("-m", "plugrad", "info")
    assert done.returncode == 0, done.stderr
    text = done.stdout
    source = "plugrad-broken-backends 0.0.1"

    def entry(name: str) -> str:
        lines = text.splitlines()
        at = next(i for i, line in enumerate(lines) if line.strip().startswith(name + " "))
        return "\n".join(lines[at:at + 2])

    assert re.search(rf"broken_import\s+failed\s+{source}", entry("broken_import"))
    assert ("reason: import failed: ImportError: libbrokengpu.so.3: cannot open shared object "
            "file at ") in entry("broken_import")
    assert "import_error.py:2" in entry("broken_import")
    assert f"built for backend API version {plugrad.hookspecs.API_VERSION + 1}" in \
        entry("broken_api")
    assert (f"PluginError: backend plugin 'broken_dup' ({source}): device type 'cpu' is already "
            f"registered by backend 'numpy' (plugrad ") in entry("broken_dup")
    assert re.search(rf"broken_shape\s+loaded\s+{source}\s+device types: badshape",
                     entry("broken_shape"))
    assert re.search(r"numpy\s+loaded\s+plugrad ", text) and re.search(r"ref\s+loaded", text)


def test_import_plugrad_and_other_backends_keep_working(venv):
    done = venv.script("""
        import numpy as np
        import plugrad
        import plugrad.functional as F
        x = plugrad.Tensor([[1.0, 2.0], [3.0, 4.0]], device="cpu0")
        y = plugrad.Tensor([[1.0, 2.0], [3.0, 4.0]], device="ref1")
        print(F.matmul(x, x).numpy().tolist(), F.matmul(y, y).numpy().tolist())
        try:
            plugrad.Tensor([1.0], device="brokengpu0")
        except RuntimeError as exc:
            print("refused:", exc)
        """)
    assert done.returncode == 0, done.stderr
    first, refused = done.stdout.strip().splitlines()
    assert first == "[[7.0, 10.0], [15.0, 22.0]] [[7.0, 10.0], [15.0, 22.0]]"
    assert "no backend provides device type 'brokengpu'" in refused
    assert "backend 'broken_import' (plugrad-broken-backends 0.0.1) failed to load" in refused


def test_conformance_names_the_kernel_with_the_wrong_shape_or_dtype(venv):
    done = venv.run("-m", "plugrad.conformance", "--backend", "broken_shape", "-q",
                    "-k", "test_forward and (sum-float32 or exp-float32)")
    assert done.returncode == 1, done.stdout[-3000:]
    out = done.stdout
    assert ("sum: the 'broken_shape' backend's kernel (device type 'badshape') returned shape "
            "() for inputs [(2, 3) float32] with {axis=None, keepdims=True}; expected shape "
            "(1, 1)") in out
    assert ("exp: the 'broken_shape' backend's kernel (device type 'badshape') returned dtype "
            "float64 for inputs [(2, 3) float32]; expected float32") in out
    assert "rerun:   python -m plugrad.conformance --backend broken_shape" in out


def test_conformance_refuses_a_backend_that_failed_to_load(venv):
    done = venv.run("-m", "plugrad.conformance", "--backend", "broken_api")
    assert done.returncode == 4
    assert ("--backend 'broken_api': backend plugin 'broken_api' (plugrad-broken-backends "
            "0.0.1) failed to load: built for backend API version") in done.stderr


TRAIN_LENET = """
import json
import numpy as np
import plugrad as P
import plugrad.functional as F
import plugrad.module as M
import plugrad.optimizer as optim
from plugrad.autodiff import GradManager
from plugrad.core.registry import OPS

STEPS, BATCHES = 20, 4  # the same four batches in turn, so the loss must fall
rng = np.random.default_rng(0)
images = rng.normal(0.0, 1.0, (BATCHES, 8, 1, 32, 32)).astype(np.float32)
labels = rng.integers(0, 10, (BATCHES, 8)).astype(np.int32)
with P.using_device("cpu0"):
    P.random.seed(0)
    start = {k: np.asarray(v) for k, v in M.LeNet().state_dict().items()}


def train(device):
    with P.using_device(device):
        model = M.LeNet()
        model.load_state_dict(start)
        gm = GradManager().attach(model.parameters())
        opt = optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
        losses, arrays_swapped = [], True
        for step in range(STEPS):
            x, y = P.Tensor(images[step % BATCHES]), P.Tensor(labels[step % BATCHES])
            before = [p._data for p in model.parameters()]
            with gm:
                loss = F.nn.cross_entropy(model(x), y)
                gm.backward(loss)
            opt.step().clear_grad()
            losses.append(loss.item())
            arrays_swapped &= all(p._data is not b for p, b in zip(model.parameters(), before))
        where = sorted({p.device.physical for p in model.parameters()})
        state = {k: np.asarray(v) for k, v in model.state_dict().items()}
        return losses, where, state, arrays_swapped


ref_losses, ref_where, ref_state, ref_swapped = train("ref0")
cpu_losses, cpu_where, cpu_state, cpu_swapped = train("cpu0")
ref_kernels = P.Tensor(0.0, device="ref0").device.kernels
print(json.dumps({
    "ref": ref_losses, "cpu": cpu_losses, "ref_where": ref_where, "cpu_where": cpu_where,
    "ref_swapped": ref_swapped, "cpu_swapped": cpu_swapped,
    "native_on_ref": sorted(op for op in OPS if op in ref_kernels and not OPS[op].primitive),
    "fused_on_cpu": sorted(op for op in ("conv2d", "max_pool2d", "softmax_cross_entropy")
                           if op in P.Tensor(0.0, device="cpu0").device.kernels),
    "max_param_diff": max(float(np.max(np.abs(ref_state[k] - cpu_state[k]))) for k in start),
}))
"""


def test_lenet_trains_on_ref_through_decompositions_like_numpy(venv):
    """Twenty SGD steps of LeNet on ref (every nn op decomposed, every update a new array
    swapped into the parameter) match the numpy backend's (in-place updates) from the same
    weights and batches."""
    done = venv.script(TRAIN_LENET)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["native_on_ref"] == [] and result["ref_where"] == ["ref0"]
    assert result["fused_on_cpu"] == ["conv2d", "max_pool2d", "softmax_cross_entropy"]
    assert result["cpu_where"] == ["cpu0"]
    assert result["ref_swapped"] and not result["cpu_swapped"]
    ref, cpu = result["ref"], result["cpu"]
    assert len(ref) == len(cpu) == 20
    assert sum(ref[-4:]) < sum(ref[:4]), f"LeNet on ref did not learn: losses {ref}"
    for step, (a, b) in enumerate(zip(ref, cpu)):
        assert abs(a - b) <= 1e-4 * abs(b), f"step {step}: ref loss {a}, numpy loss {b}"
    assert result["max_param_diff"] < 1e-4


def test_a_working_copy_is_checked_while_an_installed_copy_exists(venv, tmp_path):
    """docs/backends.md's recipe: the working copy first on PYTHONPATH, registered by import
    path, and the installed entry point kept out by the allowlist."""
    work = tmp_path / "plugrad-ref-backend"
    shutil.copytree(EXAMPLE, work, ignore=shutil.ignore_patterns("build", "*.egg-info",
                                                                 "__pycache__"))
    plugin = work / "plugrad_ref" / "plugin.py"
    plugin.write_text(plugin.read_text().replace("DEVICE_COUNT = 2", "DEVICE_COUNT = 3"))
    args = ("-m", "plugrad.conformance", "--plugin", "plugrad_ref.plugin", "--backend",
            "plugrad_ref.plugin", "-q", "-k", "test_devices")
    path = os.pathsep.join([str(work), str(ROOT)])
    done = venv.run(*args, env={"PYTHONPATH": path, "PLUGRAD_BACKENDS": "numpy"})
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "failed" not in done.stdout.strip().splitlines()[-1]
    used = venv.script("""
        import plugrad
        from plugrad.core import plugins
        import plugrad_ref.plugin as working
        plugins.register_plugin(working, name="plugrad_ref.plugin")
        print(working.__file__, plugrad.get_device_count("ref"))
        """, env={"PYTHONPATH": path, "PLUGRAD_BACKENDS": "numpy"})
    assert used.returncode == 0, used.stderr[-2000:]
    where, count = used.stdout.split()
    assert Path(where).is_relative_to(work) and count == "3"
    clash = venv.run(*args, env={"PYTHONPATH": path})  # the installed 'ref' is loaded too
    assert clash.returncode != 0
    assert "device type 'ref' is already registered by backend 'ref'" in \
        clash.stdout + clash.stderr
