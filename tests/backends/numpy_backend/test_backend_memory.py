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


FRESH_PROCESS_CONVOLUTIONS = """
import resource, numpy as np, plugrad as P
P.Tensor(1.0)  # the backend loads, and tunes malloc, before any large array was ever freed
from plugrad.core import registry
conv2d = registry.dispatch_table(P.Tensor(0.0).device.type)["conv2d"]
rng = np.random.default_rng(0)
x = rng.standard_normal((64, 16, 32, 32)).astype(np.float32)
w = rng.standard_normal((16, 16, 3, 3)).astype(np.float32)
attrs = dict(stride=(1, 1), padding=(1, 1), dilation=(1, 1), groups=1)
for _ in range(3):
    conv2d(x, w, None, **attrs)
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(10):
    conv2d(x, w, None, **attrs)
print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 10)
"""


@glibc
def test_arrays_are_not_mmapped_afresh_when_the_backend_loads_first():
    # Tuning malloc turns off glibc's dynamic mmap threshold: unless the threshold is set too,
    # every array over 128 KB is mmapped and page-faulted again (~5500 faults a call here).
    done = subprocess.run([sys.executable, "-c", FRESH_PROCESS_CONVOLUTIONS],
                          capture_output=True, text=True, check=True)
    assert float(done.stdout) < 200
