"""The numpy backend holds BLAS at one thread only while its GEMM kernels run: the process's
own setting (the user's NumPy code) is unchanged before, between and after plugrad's ops."""
import os
import platform
import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest
from threadpoolctl import ThreadpoolController, threadpool_limits

import plugrad as P
from plugrad.backends.numpy_backend import _blas
from plugrad.cli.info import blas_lines
from plugrad.core import registry

USER_THREADS = 3  # the user's own choice, different from the kernels' 1


def blas_counts():
    return [lib.num_threads for lib in ThreadpoolController().lib_controllers
            if lib.user_api == "blas"]


@pytest.fixture
def user_setting(monkeypatch):
    """The process set to USER_THREADS BLAS threads, as a user's threadpoolctl call does."""
    for name in ("PLUGRAD_BLAS_THREADS",) + _blas._USER_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    limits = threadpool_limits(limits=USER_THREADS, user_api="blas")
    if set(blas_counts()) != {USER_THREADS}:
        limits.restore_original_limits()
        pytest.skip(f"this BLAS does not take {USER_THREADS} threads here")
    yield
    limits.restore_original_limits()


def probe(seen, wait=None):
    """A kernel that records the BLAS thread counts it runs under."""
    def kernel(*args, **kwargs):
        seen.append(blas_counts())
        if wait is not None:
            wait()
            seen.append(blas_counts())
        return "result"
    return kernel


def test_a_scoped_kernel_runs_with_one_thread_and_restores_the_users(user_setting):
    seen = []
    add = np.add
    table = _blas.scoped({"conv2d": probe(seen), "add": add})
    assert table["add"] is add  # only kernels that reach BLAS pay for the scope
    assert table["conv2d"]() == "result"
    assert seen == [[1] * len(seen[0])] and blas_counts() == [USER_THREADS] * len(seen[0])


def test_gemms_too_small_for_blas_threads_run_unscoped(user_setting):
    # OpenBLAS runs a GEMM of m*n*k <= 65536 * 4 on one thread anyway: no scope needed.
    seen = []
    table = _blas.scoped({"matmul": probe(seen), "linear": probe(seen)})
    ones, users = [1] * len(blas_counts()), [USER_THREADS] * len(blas_counts())
    table["matmul"](np.ones((64, 64)), np.ones((64, 64)))  # 64**3 = 262144: one thread
    table["matmul"](np.ones((2, 64, 64)), np.ones((64, 64)))  # two of them: bound exceeded
    table["linear"](np.ones((64, 400)), np.ones((120, 400)))  # LeNet's fc1: 3 M
    table["linear"](np.ones((64, 84)), np.ones((10, 84)))  # its classifier: 54 K
    assert seen == [users, ones, ones, users]


def test_a_failing_kernel_restores_the_users_setting(user_setting):
    def conv2d():
        raise ValueError("bad shapes")
    with pytest.raises(ValueError, match="bad shapes"):
        _blas.scoped({"conv2d": conv2d})["conv2d"]()
    assert set(blas_counts()) == {USER_THREADS}


def test_a_kernel_inside_another_and_one_on_another_thread_share_the_scope(user_setting):
    # The outer kernel waits, inside its scope, for an inner kernel (same thread) and for one
    # on a worker thread; both run with one thread, and only the outer exit restores.
    seen_inner, seen_worker, seen_outer = [], [], []
    table = {}

    def outer():
        seen_outer.append(blas_counts())
        table["conv2d_grad_input"]()
        seen_outer.append(blas_counts())  # the inner exit must not have restored yet
        worker = threading.Thread(target=table["conv2d_grad_weight"])
        worker.start()
        worker.join(30)
        seen_outer.append(blas_counts())

    table.update(_blas.scoped({"conv2d": outer, "conv2d_grad_input": probe(seen_inner),
                               "conv2d_grad_weight": probe(seen_worker)}))
    table["conv2d"]()
    ones = [1] * len(blas_counts())
    assert seen_outer == [ones] * 3 and seen_inner == [ones] and seen_worker == [ones]
    assert set(blas_counts()) == {USER_THREADS}


def test_a_kernel_on_another_thread_leaves_the_setting_alone(user_setting):
    # Off the main thread the count is not touched (OpenBLAS would ignore a restore there).
    seen = []
    worker = threading.Thread(target=_blas.scoped({"conv2d": probe(seen)})["conv2d"])
    worker.start()
    worker.join(30)
    assert seen == [[USER_THREADS] * len(blas_counts())]
    assert set(blas_counts()) == {USER_THREADS}


def test_openblas_is_set_through_its_own_c_functions(user_setting):
    """NumPy's OpenBLAS (its own threads) is scoped by its C functions, not threadpoolctl's
    methods: what they set is what threadpoolctl then reads."""
    libraries = [lib for lib in _blas._blas_libraries() if lib.internal_api == "openblas"
                 and lib.threading_layer != "openmp"]
    if not libraries:
        pytest.skip("no OpenBLAS with its own threads here")
    get, set_ = _blas.thread_count_functions(libraries[0])
    assert not hasattr(get, "__self__") and not hasattr(set_, "__self__")  # not bound methods
    assert "openblas_get_num_threads" in get.__name__
    assert get() == USER_THREADS
    set_(2)
    try:
        assert libraries[0].get_num_threads() == 2
    finally:
        set_(USER_THREADS)


def test_other_libraries_are_set_through_threadpoolctl():
    class Controller:  # a BLAS threadpoolctl knows and plugrad has no C functions for
        internal_api, threading_layer, dynlib = "mkl", "intel", object()

        def get_num_threads(self):
            return 4

        def set_num_threads(self, threads):
            self.threads = threads

    controller = Controller()
    get, set_ = _blas.thread_count_functions(controller)
    assert get() == 4 and set_.__self__ is controller
    scope = _blas._Scope(1, [controller])
    scope.enter()
    assert controller.threads == 1
    scope.exit()
    assert controller.threads == 4


def test_the_backends_gemm_kernels_are_the_scoped_ones():
    table = registry.dispatch_table(P.Tensor(0.0).device.type)
    if _blas.blas_threads() == 0:
        pytest.skip("PLUGRAD_BLAS_THREADS=0 or a *_NUM_THREADS variable is set")
    assert table["matmul"].__wrapped__ is np.matmul
    for name in _blas.BLAS_KERNELS:
        assert hasattr(table[name], "__wrapped__"), name
    assert not hasattr(table["add"], "__wrapped__")


@pytest.mark.parametrize("env, threads", [
    ({}, 1), ({"PLUGRAD_BLAS_THREADS": "2"}, 2), ({"PLUGRAD_BLAS_THREADS": "0"}, 0),
    ({"OPENBLAS_NUM_THREADS": "4"}, 0), ({"MKL_NUM_THREADS": "4"}, 0),
    ({"OMP_NUM_THREADS": "4", "PLUGRAD_BLAS_THREADS": "1"}, 1)])
def test_the_thread_count_follows_the_environment(monkeypatch, env, threads):
    for name in ("PLUGRAD_BLAS_THREADS",) + _blas._USER_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert _blas.blas_threads() == threads
    table = {"matmul": np.matmul}
    assert (_blas.scoped(table) is table) == (threads == 0)


FRESH_PROCESS = textwrap.dedent("""
    import numpy as np
    from threadpoolctl import ThreadpoolController, threadpool_limits
    threadpool_limits(limits=3, user_api="blas")  # the user's choice, before plugrad runs
    import plugrad as P, plugrad.functional as F, plugrad.module as M
    from plugrad.autodiff import GradManager
    model = M.LeNet()
    gm = GradManager().attach(model.parameters())
    x = P.Tensor(np.ones((8, 1, 32, 32), np.float32))
    with gm:
        gm.backward(F.nn.cross_entropy(model(x), P.Tensor(np.zeros(8, np.int32))))
    print(sorted({lib.num_threads for lib in ThreadpoolController().lib_controllers
                  if lib.user_api == "blas"}))
""")


def test_a_training_step_in_a_fresh_process_leaves_the_users_setting():
    env = {k: v for k, v in os.environ.items()
           if k not in ("PLUGRAD_BLAS_THREADS",) + _blas._USER_VARIABLES}
    run = subprocess.run([sys.executable, "-c", FRESH_PROCESS], capture_output=True, text=True,
                         env=env, timeout=300)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "[3]"


def test_info_lists_the_blas_libraries_and_their_threads(user_setting):
    lines = blas_lines()
    assert "GEMM kernels use 1 while they run" in lines[0]
    libraries = ThreadpoolController().info()
    hinted = _blas.avx512_hint(libraries) is not None
    assert libraries and len(lines) == 1 + len(libraries) + hinted
    for library in libraries:
        row = next(line for line in lines[1:] if library["filepath"] in line)
        assert library["internal_api"] in row and f" {library['num_threads']} threads" in row
    assert any(f" {USER_THREADS} threads" in line for line in lines[1:])


def test_without_threadpoolctl_blas_is_left_alone_and_info_says_so(monkeypatch):
    monkeypatch.delenv("PLUGRAD_BLAS_THREADS", raising=False)
    for name in _blas._USER_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setitem(sys.modules, "threadpoolctl", None)  # as if it were not installed
    table = {"matmul": np.matmul}
    assert _blas.scoped(table) is table
    assert blas_lines() == ["BLAS: threadpoolctl is not installed (pip install threadpoolctl), "
                            "so plugrad leaves BLAS threads alone and cannot list them"]


CPUINFO = "processor\t: 0\nmodel name\t: Some CPU\nflags\t\t: fpu sse2 avx2 fma {extra}\n"


@pytest.mark.parametrize("extra, architecture, hinted", [
    ("avx512f avx512bw", "Haswell", True),    # AVX2 kernels on an AVX-512 CPU
    ("avx512f avx512bw", "Zen", True),
    ("avx512f avx512bw", "SkylakeX", False),  # already the AVX-512 kernels
    ("", "Haswell", False),                   # an AVX2 CPU: nothing better to pick
    ("avx512vl", "Haswell", False),           # no avx512f: not an AVX-512 CPU
])
def test_the_avx512_hint_needs_an_avx512_cpu_running_avx2_kernels(tmp_path, extra, architecture,
                                                                   hinted):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(CPUINFO.format(extra=extra))
    libraries = [{"internal_api": "openblas", "architecture": architecture},
                 {"internal_api": "openmp"}]
    hint = _blas.avx512_hint(libraries, str(cpuinfo))
    assert (hint is not None) == hinted
    if hinted:
        assert f"its {architecture} (AVX2) kernels" in hint and "OPENBLAS_CORETYPE=SkylakeX" in hint


def test_the_avx512_hint_without_a_cpuinfo_file(tmp_path):
    assert _blas.avx512_hint([{"internal_api": "openblas", "architecture": "Haswell"}],
                             str(tmp_path / "missing")) is None


def _cpu_flags() -> set[str]:
    try:
        with open("/proc/cpuinfo") as file:
            return next((set(line.split()) for line in file if line.startswith("flags")), set())
    except OSError:
        return set()


@pytest.mark.parametrize("coretype", ["Haswell", "SkylakeX"])
def test_plugrad_info_names_the_kernels_openblas_picked(coretype):
    if sys.platform != "linux" or platform.machine() != "x86_64":
        pytest.skip("OpenBLAS kernel sets named here are x86-64 ones")
    env = dict(os.environ, OPENBLAS_CORETYPE=coretype)
    done = subprocess.run([sys.executable, "-m", "plugrad", "info"], capture_output=True,
                          text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    assert f", {coretype} kernels" in done.stdout
    hinted = "OPENBLAS_CORETYPE=SkylakeX in the environment" in done.stdout
    assert hinted == (coretype == "Haswell" and "avx512f" in _cpu_flags())
