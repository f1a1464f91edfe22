"""Throughput of the MNIST input pipeline of the quick-start (batch 64, shuffled).

    python -m pytest benchmarks/bench_data_pipeline.py --benchmark-only
    python benchmarks/bench_data_pipeline.py          # prints batches/s and ms/batch

Reads the real MNIST from ``../shared/datasets/mnist`` relative to the repository root
(skipped if absent). Each measured call produces one collated batch
``(float32[64, 1, 32, 32], int32[64])`` with the seed's transform
``Normalize(0.1307*255, 0.3081*255), Pad(2), ToMode("CHW")``.

Variants: the default single-process DataLoader (which gathers and transforms the whole
batch at once when that is equivalent), the same pipeline forced through the generic
per-sample path (a custom collator disables the fast path), and two worker processes.
"""

from __future__ import annotations

import os
import sys
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
MNIST_DIR = os.path.join(ROOT, "..", "shared", "datasets", "mnist")
BATCH = 64

import plugrad.data as data  # noqa: E402
import plugrad.data.transform as T  # noqa: E402
from plugrad.data.dataset import MNIST  # noqa: E402


class _PerSampleCollator(data.Collator):
    """Same batching as Collator; being a subclass, it disables the whole-batch fast path."""


def make_loader(variant: str):
    dataset = MNIST(MNIST_DIR, train=True, download=False)
    sampler = data.Infinite(data.RandomSampler(dataset, batch_size=BATCH, seed=0))
    transform = T.Compose([T.Normalize(0.1307 * 255, 0.3081 * 255), T.Pad(2), T.ToMode("CHW")])
    if variant == "per_sample":
        return data.DataLoader(dataset, sampler, transform, collator=_PerSampleCollator())
    if variant == "workers2":
        return data.DataLoader(dataset, sampler, transform, num_workers=2)
    return data.DataLoader(dataset, sampler, transform)


needs_mnist = pytest.mark.skipif(not os.path.isdir(MNIST_DIR), reason="real MNIST not present")


def _bench(benchmark, variant):
    it = iter(make_loader(variant))
    for _ in range(20):  # warm up (worker start, first-touch of shared memory)
        next(it)
    images, labels = benchmark(lambda: next(it))
    assert images.shape == (BATCH, 1, 32, 32) and labels.shape == (BATCH,)


@needs_mnist
def test_mnist_dataloader_default(benchmark):
    _bench(benchmark, "default")


@needs_mnist
def test_mnist_dataloader_per_sample_path(benchmark):
    _bench(benchmark, "per_sample")


@needs_mnist
def test_mnist_dataloader_two_workers(benchmark):
    _bench(benchmark, "workers2")


def main() -> None:
    if not os.path.isdir(MNIST_DIR):
        print("real MNIST not found at", os.path.abspath(MNIST_DIR))
        return
    for variant, n in (("default", 3000), ("per_sample", 1000), ("workers2", 3000)):
        it = iter(make_loader(variant))
        for _ in range(20):
            next(it)
        start = time.perf_counter()
        for _ in range(n):
            next(it)
        elapsed = time.perf_counter() - start
        print(
            f"{variant:<11} {n / elapsed:8.0f} batches/s  {1e3 * elapsed / n:.3f} ms/batch  "
            f"(batch {BATCH}, {n} batches)"
        )


if __name__ == "__main__":
    main()
