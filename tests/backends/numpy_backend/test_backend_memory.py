"""The numpy backend keeps freed heap memory mapped, so training steps do not page-fault."""
import os
import platform
import subprocess
import sys

import numpy as np
import pytest

import plugrad as P
import plugrad.functional as F
import plugrad.module as M
import plugrad.optimizer as optim
from plugrad.autodiff import GradManager

glibc = pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc",
                           reason="malloc tuning applies to glibc only")


@glibc
def test_lenet_steps_do_not_page_fault_their_arrays_back_in():
    import resource

    model = M.LeNet()
    gm = GradManager().attach(model.parameters())
    opt = optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    x = P.Tensor(np.random.default_rng(0).standard_normal((64, 1, 32, 32)).astype(np.float32))
    y = P.Tensor(np.arange(64, dtype=np.int32) % 10)

    def step():
        with gm:
            gm.backward(F.nn.cross_entropy(model(x), y))
            opt.step().clear_grad()

    for _ in range(5):
        step()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(10):
        step()
    faults = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 10
    # Without the tuning a step re-faults ~1800 pages (its ~7 MB of conv workspaces).
    assert faults < 200


@glibc
def test_malloc_tuning_can_be_turned_off():
    code = ("import plugrad as P; P.Tensor(1.0); "
            "from plugrad.backends.numpy_backend._malloc import keep_freed_memory as k; "
            "print(k())")
    env = dict(os.environ, PLUGRAD_MALLOC_TOP_PAD="0")
    off = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True)
    assert off.stdout.strip() == "0"
    env["PLUGRAD_MALLOC_TOP_PAD"] = str(32 << 20)
    on = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                        check=True)
    assert on.stdout.strip() == str(32 << 20)


@glibc
def test_arrays_below_the_mmap_ceiling_are_reused_whenever_the_tuning_was_applied():
    # Applied first thing in a fresh process, the padding alone would freeze glibc's mmap
    # threshold at 128 KiB: each 4 MiB array mmapped and page-faulted in afresh (~1000 faults).
    code = ("import resource, numpy as np\n"
            "from plugrad.backends.numpy_backend._malloc import keep_freed_memory\n"
            "assert keep_freed_memory() > 0\n"
            "np.ones(1 << 19)\n"
            "before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt\n"
            "for _ in range(20):\n"
            "    np.ones(1 << 19)\n"  # 4 MiB of float64, freed at once
            "print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 20)")
    env = {k: v for k, v in os.environ.items() if k != "PLUGRAD_MALLOC_TOP_PAD"}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, check=True)
    assert float(done.stdout) < 50, f"{done.stdout.strip()} page faults per 4 MiB array"
