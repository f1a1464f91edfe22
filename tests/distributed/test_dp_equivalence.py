"""Data-parallel LeNet equals single-process LeNet: 2 ranks x batch 32 against 1 x batch 64.

Real processes: ``mpiexec -n 2`` and ``dist.launcher`` run dp_lenet.py; the reference is the
same program in one process (no process group: no collectives, the sampler does not split).
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from plugrad.distributed.launcher import find_mpiexec

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "data"))
from data_test_helpers import NO_MNIST, real_mnist  # noqa: E402

MNIST = Path(real_mnist() or HERE / "no-mnist")
PROGRAM = HERE / "dp_lenet.py"

pytestmark = pytest.mark.skipif(real_mnist() is None, reason=NO_MNIST)


def _run(command: list[str], out: Path) -> dict[str, np.ndarray]:
    subprocess.run(command, check=True, timeout=300)
    with np.load(out) as saved:
        return dict(saved)


@pytest.fixture(scope="module")
def single(tmp_path_factory) -> dict[str, np.ndarray]:
    out = tmp_path_factory.mktemp("single") / "out.npz"
    return _run([sys.executable, str(PROGRAM), str(MNIST), str(out)], out)


def _assert_same_training(single: dict, parallel: dict) -> None:
    assert int(single["world"]) == 1 and int(parallel["world"]) == 2
    assert single["losses"].shape == (20,)
    # The loss falls: the 20 steps really train (a frozen model would agree trivially).
    assert single["losses"][-3:].mean() < single["losses"][:3].mean() - 0.5
    np.testing.assert_allclose(parallel["losses"], single["losses"], rtol=0, atol=1e-5)
    names = [k for k in single if k not in ("world", "losses")]
    assert len(names) == 10
    for name in names:
        np.testing.assert_allclose(parallel[name], single[name], rtol=0, atol=1e-5,
                                   err_msg=name)


def test_mpiexec_two_ranks_match_one_process(single, tmp_path):
    out = tmp_path / "out.npz"
    parallel = _run([find_mpiexec(), "-n", "2", sys.executable, str(PROGRAM), str(MNIST),
                     str(out)], out)
    _assert_same_training(single, parallel)


def test_launcher_two_ranks_match_one_process(single, tmp_path):
    out = tmp_path / "out.npz"
    parallel = _run([sys.executable, str(PROGRAM), str(MNIST), str(out), "--launcher"], out)
    _assert_same_training(single, parallel)
