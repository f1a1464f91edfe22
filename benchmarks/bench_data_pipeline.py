"""Throughput of the MNIST input pipeline of the quick-start (batch 64, shuffled).

    python benchmarks/bench_data_pipeline.py [--batches 1000]   # ms per batch and batches/s

Reads the real MNIST from ``../shared/datasets/mnist`` relative to the repository root.
Each measured call produces one collated batch
``(float32[64, 1, 32, 32], int32[64])`` with the seed's transform
``Normalize(0.1307*255, 0.3081*255), Pad(2), ToMode("CHW")``.

Variants: the default single-process DataLoader (which gathers and transforms the whole
batch at once when that is equivalent), the same pipeline forced through the generic
per-sample path (a custom collator disables the fast path), and two worker processes; they
take turns in interleaved rounds (benchmarks/timing.py).
"""

from __future__ import annotations

import argparse
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
MNIST_DIR = os.path.join(ROOT, "..", "shared", "datasets", "mnist")
BATCH = 64

import plugrad.data as data  # noqa: E402
import plugrad.data.transform as T  # noqa: E402
from plugrad.data.dataset import MNIST  # noqa: E402
from timing import median_min_ms, time_rounds  # noqa: E402


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=1000, help="timed batches per variant")
    args = parser.parse_args()
    if not os.path.isdir(MNIST_DIR):
        print("real MNIST not found at", os.path.abspath(MNIST_DIR))
        sys.exit(1)
    batches = {}
    for variant in ("default", "per_sample", "workers2"):
        batches[variant] = iter(make_loader(variant))
        images, labels = next(batches[variant])
        assert images.shape == (BATCH, 1, 32, 32) and labels.shape == (BATCH,)
    # the warm-up covers worker start and the first touch of shared memory
    times = time_rounds({name: it.__next__ for name, it in batches.items()}, args.batches,
                        warmup=20, settle=1)
    for variant, values in times.items():
        median, low = median_min_ms(values)
        print(f"{variant:<11} {median:.3f} ms/batch (min {low:.3f}), {1e3 / median:8.0f} "
              f"batches/s  (batch {BATCH}, {len(values)} batches)")


if __name__ == "__main__":
    main()
