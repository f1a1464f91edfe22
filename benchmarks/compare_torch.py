"""plugrad's LeNet training step against PyTorch CPU (and the numpy kernels called directly),
in the same process, on the same weights and batch.

    PYTHONPATH=. python benchmarks/compare_torch.py [--steps 200] [--warmup 30]

Steps are timed in interleaved rounds (plugrad, kernels, torch, plugrad, ...) so drift of a
shared machine hits every side alike (each round first runs two untimed steps); the medians and
their ratios are printed. PyTorch is
optional: without it only plugrad and the direct kernels are timed. "kernels" is the same step
written by hand over the numpy backend's kernel functions (no Tensors, tape or dispatch), so
plugrad / kernels is the framework's overhead.
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from lenet_step import initial_state, kernels_step, make_batch, plugrad_step, torch_step


def _time_rounds(steps: dict, total: int, warmup: int, per_round: int = 10,
                 settle: int = 2, clock=time.perf_counter) -> dict:
    """Per-step times, sides interleaved in rounds; each round starts with ``settle`` untimed
    steps, so one side's lingering threads (torch's OpenMP workers spin for a while after
    a parallel region) do not land on the other side's clock. ``clock`` may be
    ``time.process_time``: CPU seconds of the whole process, which a loaded machine's waits for
    a core do not inflate (fair with one thread per side: spinning threads count too)."""
    for step in steps.values():
        for _ in range(warmup):
            step()
    times: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(max(1, total // per_round)):
        for name, step in steps.items():
            for _ in range(settle):
                step()
            for _ in range(per_round):
                start = clock()
                step()
                times[name].append(clock() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200, help="timed steps per side")
    parser.add_argument("--warmup", type=int, default=30)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--torch-threads", type=int, default=None,
                        help="torch.set_num_threads (default: torch's own choice)")
    args = parser.parse_args()

    state = initial_state()
    images, labels = make_batch(args.batch)
    steps = {"plugrad": plugrad_step(state, images, labels),
             "kernels": kernels_step(state, images, labels)}
    try:
        import torch
    except ImportError:
        torch = None
        print("torch is not importable: timing plugrad and the direct kernels only")
    if torch is not None:
        if args.torch_threads:
            torch.set_num_threads(args.torch_threads)
        steps["torch"] = torch_step(state, images, labels)
        first = {name: float(step()) for name, step in steps.items()}
        print("first-step losses (same weights, same batch): "
              + ", ".join(f"{name} {loss:.6f}" for name, loss in first.items()))
        print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; numpy "
              f"{np.__version__}")

    times = _time_rounds(steps, args.steps, args.warmup)
    medians = {name: statistics.median(values) * 1e3 for name, values in times.items()}
    print(f"LeNet training step, batch {args.batch}, median of {len(times['plugrad'])} steps:")
    for name, value in medians.items():
        low = min(times[name]) * 1e3
        print(f"  {name:8s} {value:7.2f} ms   (min {low:.2f} ms)")
    print(f"  plugrad / kernels = {medians['plugrad'] / medians['kernels']:.2f}  "
          f"(framework overhead)")
    if "torch" in medians:
        print(f"  plugrad / torch   = {medians['plugrad'] / medians['torch']:.2f}")


if __name__ == "__main__":
    main()
