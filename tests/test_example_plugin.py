"""The example backend, installed for real with pip into a throwaway virtual environment.

A session fixture creates a venv (``tests/plugin_venv.py``) that sees this interpreter's
site-packages, installs ``examples/plugrad-ref-backend`` and the deliberately broken
``tests/fixtures/plugrad-broken-backends`` into it offline, and every check runs in a
subprocess of that venv's Python with this checkout first on ``PYTHONPATH``.
"""
from __future__ import annotations

import importlib.util
import json
import re

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


def _load_example_kernels():
    spec = importlib.util.spec_from_file_location(
        "example_ref_kernels", EXAMPLE / "plugrad_ref" / "kernels.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.KERNELS


def test_example_implements_exactly_the_required_primitives():
    """Only primitives (so composites must decompose), all of them, and its own code only."""
    assert sorted(_load_example_kernels()) == PRIMITIVES
    for path in (EXAMPLE / "plugrad_ref").glob("*.py"):
        assert "plugrad.backends" not in path.read_text(), f"{path.name} imports plugrad's backend"


def test_ref_is_discovered_by_plugrad_info(venv):
    done = venv.run("-m", "plugrad", "info")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    ref = next(line for line in lines if line.strip().startswith("ref "))
    assert re.search(r"ref\s+loaded\s+plugrad-ref-backend 0\.1\.0\s+device types: ref", ref), ref
    assert re.search(r"ref\s+backend 'ref'\s+priority -1\s+2 available", done.stdout)
    native = f"ref    {len(PRIMITIVES)}/{len(OPS)} native"
    assert f"{native}, {len(COMPOSITES)} decomposed, 0 missing" in done.stdout
    assert f"decomposed: {', '.join(COMPOSITES)}" in done.stdout


def test_ref_is_certified_by_the_conformance_suite(venv):
    done = venv.run("-m", "plugrad.conformance", "--backend", "ref", "-q")
    summary = done.stdout.strip().splitlines()[-1]
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    passed = int(re.search(r"(\d+) passed", summary).group(1))
    assert passed > 1000 and "failed" not in summary, summary


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

rng = np.random.default_rng(0)
images = rng.normal(0.0, 1.0, (8, 1, 32, 32)).astype(np.float32)
labels = rng.integers(0, 10, 8).astype(np.int32)
with P.using_device("cpu0"):
    P.random.seed(0)
    start = {k: np.asarray(v) for k, v in M.LeNet().state_dict().items()}


def train(device):
    with P.using_device(device):
        model = M.LeNet()
        model.load_state_dict(start)
        gm = GradManager().attach(model.parameters())
        opt = optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
        x, y = P.Tensor(images), P.Tensor(labels)
        losses = []
        for _ in range(5):
            with gm:
                loss = F.nn.cross_entropy(model(x), y)
                gm.backward(loss)
            opt.step().clear_grad()
            losses.append(loss.item())
        where = sorted({p.device.physical for p in model.parameters()})
        return losses, where, {k: np.asarray(v) for k, v in model.state_dict().items()}


ref_losses, ref_where, ref_state = train("ref0")
cpu_losses, cpu_where, cpu_state = train("cpu0")
ref_kernels = P.Tensor(0.0, device="ref0").device.kernels
print(json.dumps({
    "ref": ref_losses, "cpu": cpu_losses, "ref_where": ref_where, "cpu_where": cpu_where,
    "native_on_ref": sorted(op for op in OPS if op in ref_kernels and not OPS[op].primitive),
    "fused_on_cpu": sorted(op for op in ("conv2d", "max_pool2d", "softmax_cross_entropy")
                           if op in P.Tensor(0.0, device="cpu0").device.kernels),
    "max_param_diff": max(float(np.max(np.abs(ref_state[k] - cpu_state[k]))) for k in start),
}))
"""


def test_lenet_trains_on_ref_through_decompositions_like_numpy(venv):
    """Five SGD steps of LeNet on ref (every nn op decomposed) match the numpy backend's."""
    done = venv.script(TRAIN_LENET)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["native_on_ref"] == [] and result["ref_where"] == ["ref0"]
    assert result["fused_on_cpu"] == ["conv2d", "max_pool2d", "softmax_cross_entropy"]
    assert result["cpu_where"] == ["cpu0"]
    ref, cpu = result["ref"], result["cpu"]
    assert ref[-1] < ref[0], f"LeNet on ref did not learn: losses {ref}"
    for step, (a, b) in enumerate(zip(ref, cpu)):
        assert abs(a - b) <= 1e-4 * abs(b), f"step {step}: ref loss {a}, numpy loss {b}"
    assert result["max_param_diff"] < 1e-4
