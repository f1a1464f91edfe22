"""Per-op framework overhead: plugrad's eager ops against NumPy and PyTorch CPU, in one run.

    python -m pytest benchmarks/bench_op_overhead.py --benchmark-only   # pytest-benchmark
    python benchmarks/bench_op_overhead.py                              # the comparison table

Budgets: ``a + b`` on 4x4 float32 costs at most 3 us more than NumPy's own ``a + b``, and an
add-sum-backward step under a GradManager is no slower than PyTorch's.
"""
from __future__ import annotations

import timeit

import numpy as np

import plugrad
from plugrad.autodiff import GradManager

try:
    import torch
except ImportError:  # the comparison is optional
    torch = None


def _arrays():
    rng = np.random.RandomState(0)
    return rng.rand(4, 4).astype(np.float32), rng.rand(4, 4).astype(np.float32)


def plugrad_add():
    a, b = _arrays()
    ta, tb = plugrad.Tensor(a), plugrad.Tensor(b)
    return lambda: ta + tb


def numpy_add():
    a, b = _arrays()
    return lambda: a + b


def plugrad_add_sum_backward():
    a, b = _arrays()
    w, x = plugrad.Parameter(a), plugrad.Tensor(b)
    gm = GradManager().attach([w])

    def step():
        with gm:
            gm.backward((w + x).sum())
        w.grad = None
    return step


def torch_add_sum_backward():
    a, b = _arrays()
    w = torch.tensor(a, requires_grad=True)
    x = torch.tensor(b)

    def step():
        (w + x).sum().backward()
        w.grad = None
    return step


def torch_add():
    a, b = _arrays()
    ta, tb = torch.tensor(a), torch.tensor(b)
    return lambda: ta + tb


def test_plugrad_add(benchmark):
    benchmark(plugrad_add())


def test_numpy_add(benchmark):
    benchmark(numpy_add())


def test_plugrad_add_sum_backward(benchmark):
    benchmark(plugrad_add_sum_backward())


def best_us(make, number: int, repeat: int = 7) -> float:
    fn = make()
    return min(timeit.repeat(fn, number=number, repeat=repeat)) / number * 1e6


def main() -> None:
    if torch is not None:
        torch.set_num_threads(1)
    rows = [("a + b, 4x4 float32", [("numpy", numpy_add), ("plugrad", plugrad_add)]
             + ([("torch", torch_add)] if torch else []), 100_000),
            ("add-sum-backward, 4x4", [("plugrad", plugrad_add_sum_backward)]
             + ([("torch", torch_add_sum_backward)] if torch else []), 10_000)]
    for title, makers, number in rows:
        # Interleave the contenders so machine noise hits them alike.
        times = {name: [] for name, _ in makers}
        for _ in range(3):
            for name, make in makers:
                times[name].append(best_us(make, number, repeat=3))
        best = {name: min(values) for name, values in times.items()}
        print(title)
        for name, value in best.items():
            print(f"  {name:<8} {value:8.2f} us")
        if "numpy" in best:
            print(f"  plugrad overhead over numpy: {best['plugrad'] - best['numpy']:.2f} us "
                  f"(budget 3 us)")
        if "torch" in best:
            print(f"  plugrad / torch: {best['plugrad'] / best['torch']:.2f}")


if __name__ == "__main__":
    main()
