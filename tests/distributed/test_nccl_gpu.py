"""The GPU path: LeNet on 2 ranks over the gpu device type against 1 process on the GPU.

With one GPU the two ranks share it; NCCL refuses that ("Duplicate GPU detected"), so the
collectives go through the host, with a warning saying so. With two or more GPUs they are
NCCL's. Skipped where CuPy sees no CUDA device.
"""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from plugrad.core import device as devices
from plugrad.distributed.launcher import find_mpiexec

from test_dp_equivalence import MNIST, NO_MNIST, PROGRAM, _assert_same_training

GPUS = devices.get_device_count("gpu")
pytestmark = [pytest.mark.gpu, pytest.mark.skipif(GPUS == 0, reason="CuPy sees no CUDA device"),
              pytest.mark.skipif(not MNIST.exists(), reason=NO_MNIST)]


def test_two_ranks_on_the_gpu_match_one_process(tmp_path):
    env = dict(os.environ, PLUGRAD_DEFAULT_DEVICE="gpu0")
    outs = []
    for prefix in ([], [find_mpiexec(), "-n", "2"]):
        out = tmp_path / f"out{len(outs)}.npz"
        done = subprocess.run([*prefix, sys.executable, str(PROGRAM), str(MNIST), str(out)],
                              env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stdout + done.stderr
        with np.load(out) as saved:
            outs.append(dict(saved))
        if prefix and GPUS == 1:
            assert "several ranks share one GPU" in done.stderr
    _assert_same_training(*outs)
