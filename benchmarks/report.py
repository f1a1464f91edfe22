"""plugrad's numpy backend against PyTorch CPU, in one run: the LeNet step, the framework's
overhead, per-op overhead on small tensors, and scaling with the batch size.

    PYTHONPATH=. python benchmarks/report.py [--steps 200] [--batches 16,64,256] [--out FILE]

Every comparison interleaves its contenders in rounds (each round starts with two untimed
steps), so a shared machine's drift hits them alike; medians are reported with minimums beside
them. "kernels" is the LeNet step written by hand over the numpy backend's kernel functions (no
Tensors, tape or dispatch): plugrad's framework overhead is (plugrad - kernels) / plugrad.
PyTorch is optional (without it only plugrad and the direct kernels are timed); it runs with its
default thread count unless ``--torch-threads`` is given.
"""
from __future__ import annotations

import argparse
import statistics
import timeit
from typing import Callable

import numpy as np
from compare_torch import _time_rounds
from lenet_step import initial_state, kernels_step, make_batch, plugrad_step, torch_step

import plugrad  # noqa: E402

try:
    import torch
except ImportError:  # the comparison with PyTorch is optional
    torch = None


def _ms(values: list[float]) -> tuple[float, float]:
    return statistics.median(values) * 1e3, min(values) * 1e3


def lenet(batch: int, steps: int, warmup: int, with_kernels: bool = True) -> dict:
    """Median and minimum ms per step of each side, interleaved in rounds."""
    state = initial_state()
    images, labels = make_batch(batch)
    sides: dict[str, Callable] = {"plugrad": plugrad_step(state, images, labels)}
    if with_kernels:
        sides["kernels"] = kernels_step(state, images, labels)
    if torch is not None:
        sides["torch"] = torch_step(state, images, labels)
    times = _time_rounds(sides, steps, warmup)
    return {name: _ms(values) for name, values in times.items()}


def step_section(result: dict, batch: int) -> list[str]:
    lines = [f"## LeNet training step, batch {batch} (median ms, min in brackets)"]
    for name, (median, low) in result.items():
        lines.append(f"  {name:8s} {median:7.2f}  ({low:.2f})")
    plug, kern = result["plugrad"], result["kernels"]
    lines.append(f"  framework overhead: {(plug[0] - kern[0]) / plug[0] * 100:5.1f}% of the step "
                 f"(medians; {(plug[1] - kern[1]) / plug[1] * 100:.1f}% on minimums)")
    if "torch" in result:
        lines.append(f"  plugrad / torch:    {plug[0] / result['torch'][0]:5.2f}   "
                     f"(minimums {plug[1] / result['torch'][1]:.2f})")
    return lines


def _small_ops() -> dict[str, dict[str, Callable]]:
    rng = np.random.default_rng(0)
    a, b = (rng.random((4, 4), dtype=np.float32) for _ in range(2))
    pa, pb = plugrad.Tensor(a), plugrad.Tensor(b)
    import plugrad.functional as F

    ops = {
        "add": {"numpy": lambda: a + b, "plugrad": lambda: pa + pb},
        "mul": {"numpy": lambda: a * b, "plugrad": lambda: pa * pb},
        "matmul": {"numpy": lambda: a @ b, "plugrad": lambda: pa @ pb},
        "sum": {"numpy": lambda: a.sum(), "plugrad": lambda: pa.sum()},
        "relu": {"numpy": lambda: np.maximum(a, 0), "plugrad": lambda: F.relu(pa)},
    }
    if torch is not None:
        ta, tb = torch.from_numpy(a.copy()), torch.from_numpy(b.copy())
        ops["add"]["torch"] = lambda: ta + tb
        ops["mul"]["torch"] = lambda: ta * tb
        ops["matmul"]["torch"] = lambda: ta @ tb
        ops["sum"]["torch"] = lambda: ta.sum()
        ops["relu"]["torch"] = lambda: torch.relu(ta)
    return ops


def op_section(number: int = 20000, rounds: int = 5) -> list[str]:
    """Best-of-rounds microseconds per call; contenders interleaved within each round."""
    ops = _small_ops()
    names = list(next(iter(ops.values())))
    lines = ["## Per-op time on 4x4 float32 (us per call, best of rounds)",
             "  op      " + "".join(f"{name:>9s}" for name in names) + "  plugrad-numpy"]
    for op, contenders in ops.items():
        best = {name: float("inf") for name in contenders}
        for _ in range(rounds):
            for name, fn in contenders.items():
                best[name] = min(best[name], timeit.timeit(fn, number=number) / number * 1e6)
        row = "".join(f"{best[name]:9.2f}" for name in names)
        lines.append(f"  {op:8s}{row}  {best['plugrad'] - best['numpy']:+8.2f}")
    return lines


def scaling_section(batches: list[int], steps: int, warmup: int) -> list[str]:
    lines = ["## Batch scaling (median ms per step; min in brackets)",
             "  batch     plugrad          kernels          torch            plugrad/torch"]
    for batch in batches:
        result = lenet(batch, steps, warmup)
        cells = "".join(f"{result[name][0]:7.2f} ({result[name][1]:6.2f})  "
                        if name in result else " " * 17 for name in ("plugrad", "kernels", "torch"))
        ratio = f"{result['plugrad'][0] / result['torch'][0]:.2f}" if "torch" in result else "-"
        lines.append(f"  {batch:5d}  {cells}{ratio:>6s}")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200, help="timed steps per side")
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--batches", default="16,64,256",
                        help="comma-separated batch sizes for the scaling table ('' skips it)")
    parser.add_argument("--torch-threads", type=int, default=None)
    parser.add_argument("--out", help="also write the report to this file")
    args = parser.parse_args()
    header = [f"numpy {np.__version__}"]
    if torch is not None:
        if args.torch_threads:
            torch.set_num_threads(args.torch_threads)
        header.append(f"torch {torch.__version__} ({torch.get_num_threads()} threads)")
    from plugrad.backends.numpy_backend import _blas, _threads

    plugrad.Tensor(0.0)  # load the numpy backend (its BLAS and thread settings)
    header.append(f"plugrad numpy backend: {_threads.num_threads()} kernel threads, BLAS "
                  f"threads in its GEMMs {_blas.blas_threads() or 'untouched'}")
    lines = ["# plugrad vs PyTorch CPU: " + ", ".join(header), ""]
    lines += step_section(lenet(args.batch, args.steps, args.warmup), args.batch) + [""]
    lines += op_section() + [""]
    batches = [int(b) for b in args.batches.split(",") if b.strip()]
    if batches:
        lines += scaling_section(batches, max(args.steps // 2, 20), args.warmup)
    text = "\n".join(lines)
    print(text)
    if args.out:
        with open(args.out, "w") as handle:
            handle.write(text + "\n")


if __name__ == "__main__":
    main()
