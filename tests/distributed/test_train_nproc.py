"""``plugrad train --nproc 2``: two MPI ranks, one report, one checkpoint, equal weights."""
from __future__ import annotations

import re
import subprocess
import sys

import numpy as np

import plugrad
from tests.helpers.data import make_mnist


def test_train_nproc_2_reports_once_and_saves_once(tmp_path):
    data = tmp_path / "mnist"
    make_mnist(str(data), 96, train=True)
    make_mnist(str(data), 40, train=False)
    result = subprocess.run(
        [sys.executable, "-m", "plugrad", "train", "--data", str(data), "--epochs", "2",
         "--batch-size", "16", "--nproc", "2", "--checkpoint", str(tmp_path / "lenet.pgd")],
        capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    # Rank 0 alone prints: one header and one line per epoch, with the per-rank share of the
    # 96 samples (3 batches of 16 per rank, not 6).
    assert result.stdout.count("training LeNet on MNIST") == 1, result.stdout
    assert "3 steps/epoch" in result.stdout, result.stdout
    assert re.findall(r"^epoch\s+(\d+)", result.stdout, re.M) == ["1", "2"]
    saved = plugrad.load(str(tmp_path / "lenet.pgd"))
    assert list(tmp_path.glob("*.pgd")) == [tmp_path / "lenet.pgd"]
    assert np.isfinite(np.asarray(saved["model"]["classifier.weight"])).all()


def test_train_nproc_2_traced_saves_the_weights_of_the_eager_run(tmp_path):
    data = tmp_path / "mnist"
    make_mnist(str(data), 192, train=True)
    make_mnist(str(data), 40, train=False)
    for name, extra in (("eager", []), ("traced", ["--trace"])):
        result = subprocess.run(
            [sys.executable, "-m", "plugrad", "train", "--data", str(data), "--epochs", "2",
             "--batch-size", "16", "--nproc", "2", *extra, "--checkpoint",
             str(tmp_path / f"{name}.pgd")],
            capture_output=True, text=True, timeout=300, cwd=tmp_path)
        assert result.returncode == 0, result.stdout + result.stderr
    eager, traced = (plugrad.load(str(tmp_path / f"{name}.pgd"))["model"]
                     for name in ("eager", "traced"))
    for name, value in eager.items():  # 6 steps an epoch per rank, all-reduced in each replay
        np.testing.assert_array_equal(np.asarray(traced[name]), np.asarray(value), err_msg=name)
