"""One BLAS thread while the numpy backend's GEMM kernels run; the user's setting everywhere else.

The backend already spreads its big kernels over the cores itself (``parallel.py``), so BLAS
threads on top only oversubscribe them; and OpenBLAS's threads wait for each other at every
call: on a 2-core VM with other processes running, LeNet step medians were 6x (the direct
kernels) to 28x (plugrad) slower with 2 BLAS threads than with 1.

The limit is scoped: :func:`scoped` wraps the kernels that call BLAS (``BLAS_KERNELS``) so the
thread count of every BLAS library threadpoolctl finds (OpenBLAS, MKL, BLIS, whatever their
threading layer, OpenMP included) is set on entry and put back on exit; NumPy code of the user's
own sees the count it had before. A kernel's work on the pool's threads (``_threads.py``) runs
inside its caller's scope, and a kernel called inside another shares the outer one's.

Only calls on the main thread set the count: OpenBLAS (0.3.31, in NumPy's wheels) ignores
``openblas_set_num_threads`` from other threads once the main thread has set it, so a count set
or restored there could be lost, and the user's setting with it. Kernels called on other threads
run with the process's count (or one, while a main-thread kernel is running: the setting is
process-wide, which also holds for BLAS calls of the user's own made on other threads meanwhile).

Only BLAS's own setters are used: the OpenMP runtime's ``omp_set_num_threads`` is per thread and
plugrad's kernels run no OpenMP regions of their own.

Scoping a kernel call costs about 0.5 us with OpenBLAS (one get and two sets, calling its C
functions directly, :func:`thread_count_functions`), 1.5-2 us through threadpoolctl's
controllers (built once; ``threadpoolctl.threadpool_limits`` rescans the process's libraries
on every use, about 450 us here), for some 11 calls in a LeNet step. On that step at batch 64
(``benchmarks/blas_scope_ab.py``, one process, a busy 2-core VM) the per-kernel scope was as
fast as one limit held around the whole step (medians 6.40 vs 6.47 ms, and 6.48 vs 6.84 in a
second run), against 302-303 ms with BLAS left at its 2 threads. GEMMs too small for OpenBLAS
to thread skip the scope (``ONE_THREAD_GEMM_WORK``).

``PLUGRAD_BLAS_THREADS`` picks the count; 0 leaves BLAS alone. When it is unset and one of
``OPENBLAS_NUM_THREADS``, ``OMP_NUM_THREADS``, ``MKL_NUM_THREADS``, ``BLIS_NUM_THREADS`` is set,
the user has chosen and BLAS is left alone too.
"""
from __future__ import annotations

import functools
import os
import threading
from typing import Any, Callable

__all__ = ["BLAS_KERNELS", "DEFAULT_BLAS_THREADS", "avx512_hint", "blas_threads", "scoped",
           "thread_count_functions"]

DEFAULT_BLAS_THREADS = 1
#: The numpy backend's kernels that reach BLAS (through ``matmul``; batch norm's per-channel
#: sums are GEMVs and batched dot products, ``batch_norm.py``: its forward and input gradient,
#: given the sums, are elementwise).
BLAS_KERNELS = ("matmul", "linear", "conv2d", "conv2d_bias", "conv2d_grad_input",
                "conv2d_grad_weight", "batch_norm_stats", "batch_norm_grad_params")
#: OpenBLAS runs a GEMM of at most this m*n*k on one thread whatever its setting
#: (``interface/gemm.c``: 65536 * GEMM_MULTITHREAD_THRESHOLD 4), so a matmul or linear that
#: small runs unscoped: a scope costs more than a 4x4 matmul.
ONE_THREAD_GEMM_WORK = 65536 * 4
#: Upper bounds of the m*n*k of each GEMM a kernel call makes, for the kernels often called small.
_GEMM_WORK: dict[str, Callable[..., int]] = {
    "matmul": lambda a, b, *_, **__: a.size * (b.shape[-1] if b.ndim else 1),
    "linear": lambda x, w, *_, **__: x.size * w.shape[0],
}
_USER_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
                   "BLIS_NUM_THREADS")


#: OpenBLAS's AVX2 kernel sets (threadpoolctl's ``architecture``): the ones 0.3.31 picks on
#: AMD's AVX-512 CPUs, where its AVX-512 set (SkylakeX) ran LeNet's step in 0.85x the time and
#: SmallVGG's in 0.88x (AMD EPYC with AVX-512, same-run pairs of processes).
_AVX2_KERNELS = ("Haswell", "Zen")


def cpu_has_avx512(cpuinfo: str = "/proc/cpuinfo") -> bool:
    """Whether the CPU reports AVX-512 (``avx512f`` among the flags of Linux's cpuinfo)."""
    try:
        with open(cpuinfo, encoding="utf-8", errors="replace") as file:
            flags = next((line.split() for line in file if line.startswith("flags")), [])
    except OSError:  # no cpuinfo (not Linux): nothing known, so no hint
        return False
    return "avx512f" in flags


def avx512_hint(libraries: list[dict[str, Any]], cpuinfo: str = "/proc/cpuinfo") -> str | None:
    """A line for ``plugrad info`` when OpenBLAS runs AVX2 kernels on an AVX-512 CPU.

    OpenBLAS picks its kernels when it loads (with NumPy), from ``OPENBLAS_CORETYPE`` or the
    CPU; plugrad cannot change them later, and does not change NumPy's choice for the user.
    """
    slow = [lib for lib in libraries if lib.get("internal_api") == "openblas"
            and lib.get("architecture") in _AVX2_KERNELS]
    if not slow or not cpu_has_avx512(cpuinfo):
        return None
    return (f"OpenBLAS runs its {slow[0]['architecture']} (AVX2) kernels on this AVX-512 CPU; "
            f"OPENBLAS_CORETYPE=SkylakeX in the environment before Python starts selects its "
            f"AVX-512 ones (LeNet's training step took 0.85x the time on an AMD EPYC)")


def blas_threads() -> int:
    """The BLAS thread count plugrad's GEMM kernels run with; 0 when BLAS is left alone."""
    value = os.environ.get("PLUGRAD_BLAS_THREADS")
    if value is None:
        if any(os.environ.get(name) for name in _USER_VARIABLES):
            return 0
        return DEFAULT_BLAS_THREADS
    try:
        return max(int(value), 0)
    except ValueError:
        return 0


#: The affixes of OpenBLAS's symbols in the builds NumPy ships or links (``scipy_..._64_`` in
#: NumPy's wheels), as threadpoolctl looks them up.
_OPENBLAS_AFFIXES = [(prefix, suffix) for prefix in ("", "scipy_") for suffix in ("", "64_", "_64")]

Getter = Callable[[], int]
Setter = Callable[[int], Any]


def thread_count_functions(library: Any) -> tuple[Getter, Setter]:
    """The get and set of ``library``'s thread count a scope calls.

    OpenBLAS's own C functions where its threads are its own (not OpenMP's): threadpoolctl's
    methods add about 1.3 us of bookkeeping per scope (which Python thread controls OpenBLAS:
    a scope only ever acts on the main thread). With the C functions LeNet's step at batch 64
    took 0.95-0.99x torch's time, through threadpoolctl 0.98-1.04x (five pairs of alternating
    processes). Any other library, or an OpenBLAS whose functions are not found, goes through
    threadpoolctl's controller.
    """
    dynlib = getattr(library, "dynlib", None)
    if getattr(library, "internal_api", None) == "openblas" and dynlib is not None \
            and getattr(library, "threading_layer", None) != "openmp":
        for prefix, suffix in _OPENBLAS_AFFIXES:
            get = getattr(dynlib, f"{prefix}openblas_get_num_threads{suffix}", None)
            set_ = getattr(dynlib, f"{prefix}openblas_set_num_threads{suffix}", None)
            if get is not None and set_ is not None:
                return get, set_
    return library.get_num_threads, library.set_num_threads


class _Scope:
    """Holds every BLAS library at ``threads`` while a main-thread kernel call is inside."""

    def __init__(self, threads: int, libraries: list[Any]):
        self.threads = threads
        self.functions = [thread_count_functions(library) for library in libraries]
        self.inside = 0  # main-thread calls under way (a kernel may call another)
        self.saved: list[tuple[Setter, int]] = []

    def enter(self) -> None:
        if self.inside == 0:
            self.saved = []
            for get, set_ in self.functions:
                current = get()
                if current != self.threads:
                    set_(self.threads)
                    self.saved.append((set_, current))
        self.inside += 1

    def exit(self) -> None:
        self.inside -= 1
        if self.inside == 0:
            for set_, threads in self.saved:
                set_(threads)
            self.saved = []


def _blas_libraries() -> list[Any]:
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:  # a dependency, but a bare checkout on PYTHONPATH may lack it
        return []
    return [library for library in ThreadpoolController().lib_controllers
            if library.user_api == "blas"]


def scoped(kernels: dict[str, Callable]) -> dict[str, Callable]:
    """``kernels`` with each of ``BLAS_KERNELS`` run under the BLAS thread limit.

    Call it after NumPy is imported (its BLAS must be loaded to be found); with the limit off or
    no BLAS library found, ``kernels`` comes back unchanged.
    """
    threads = blas_threads()
    libraries = _blas_libraries() if threads > 0 else []
    if not libraries:
        return kernels
    scope = _Scope(threads, libraries)

    main_thread, current = threading.main_thread, threading.get_ident

    def wrap(name: str, kernel: Callable) -> Callable:
        enter, exit_ = scope.enter, scope.exit
        work = _GEMM_WORK.get(name)

        @functools.wraps(kernel)
        def run(*args, **kwargs):
            if current() != main_thread().ident or (
                    work is not None and work(*args, **kwargs) <= ONE_THREAD_GEMM_WORK):
                return kernel(*args, **kwargs)
            enter()
            try:
                return kernel(*args, **kwargs)
            finally:
                exit_()

        return run

    return {**kernels, **{name: wrap(name, kernels[name]) for name in BLAS_KERNELS
                          if name in kernels}}
