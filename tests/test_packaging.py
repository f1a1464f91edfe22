"""What a release carries: a complete sdist, the license, py.typed, one version, and the
conformance command's message when pytest is missing."""
from __future__ import annotations

import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

import plugrad

ROOT = Path(plugrad.__file__).resolve().parents[1]
SHIPPED = ("tests", "examples", "docs", "benchmarks")


def _source_files() -> set[str]:
    """Files of the checkout the sdist must carry (build leftovers and caches aside)."""
    found = {"LICENSE", "README.md", "pyproject.toml", "MANIFEST.in", "plugrad/py.typed"}
    for folder in SHIPPED:
        for path in (ROOT / folder).rglob("*"):
            parts = set(path.relative_to(ROOT).parts)
            if path.is_file() and path.suffix != ".pyc" and not parts & {
                    "__pycache__", "build", ".benchmarks"} \
                    and not any(p.endswith(".egg-info") for p in parts):
                found.add(path.relative_to(ROOT).as_posix())
    return found


@pytest.fixture(scope="module")
def sdist(tmp_path_factory) -> tarfile.TarFile:
    if not (ROOT / "pyproject.toml").exists():
        pytest.skip("not a source checkout")
    out = tmp_path_factory.mktemp("sdist")
    build = "import sys; from setuptools import build_meta; build_meta.build_sdist(sys.argv[1])"
    done = subprocess.run([sys.executable, "-c", build, str(out)], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "License classifiers are deprecated" not in done.stderr
    assert "project.license` as a TOML table is deprecated" not in done.stderr
    [archive] = out.glob("plugrad-*.tar.gz")
    return tarfile.open(archive)


def test_sdist_carries_every_test_and_what_the_tests_read(sdist):
    top = f"plugrad-{plugrad.__version__}/"
    names = {name.removeprefix(top) for name in sdist.getnames()}
    missing = sorted(_source_files() - names)
    assert not missing, missing
    assert len([n for n in names if n.startswith("tests/") and n.endswith(".py")]) > 40


def test_sdist_metadata_has_the_spdx_license_and_the_one_version(sdist):
    meta = sdist.extractfile(f"plugrad-{plugrad.__version__}/PKG-INFO").read().decode()
    assert f"\nVersion: {plugrad.__version__}\n" in meta
    assert "\nLicense-Expression: Apache-2.0\n" in meta
    assert "\nLicense-File: LICENSE\n" in meta
    assert "Apache License" in (ROOT / "LICENSE").read_text()
    assert 'version = "' not in (ROOT / "pyproject.toml").read_text()


def test_conformance_without_pytest_names_the_extra():
    code = ("import sys; sys.modules['pytest'] = None\n"  # an import of pytest now fails
            "from plugrad.conformance.cli import main; sys.exit(main(['--backend', 'numpy']))")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLUGRAD_")}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                          timeout=120)
    assert done.returncode == 2
    assert done.stderr == ("python -m plugrad.conformance: the suite runs on pytest, which is "
                           "not installed; pip install 'plugrad[conformance]'\n")


def test_import_plugrad_is_light_and_its_subpackages_load_on_first_use():
    # MegEngine users write ``plugrad.jit.trace`` after ``import plugrad``; the heavy optional
    # libraries still load only when something asks for them.
    code = (
        "import sys, plugrad\n"
        "heavy = ('onnx', 'onnxruntime', 'mpi4py', 'cupy', 'plugrad.jit', 'plugrad.distributed',"
        " 'PIL', 'matplotlib', 'safetensors')\n"
        "assert not [m for m in heavy if m in sys.modules], [m for m in heavy if m in sys.modules]\n"
        "assert callable(plugrad.jit.trace) and callable(plugrad.distributed.get_rank)\n"
        "assert plugrad.module.Linear is plugrad.nn.Linear\n"
        "assert plugrad.data.DataLoader.__name__ == 'DataLoader'\n"
        "assert 'onnx' not in sys.modules and 'mpi4py' not in sys.modules\n"
        "try:\n"
        "    plugrad.no_such_thing\n"
        "except AttributeError as exc:\n"
        "    assert 'no_such_thing' in str(exc)\n"
        "else:\n"
        "    raise SystemExit('plugrad.no_such_thing did not raise')\n")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
