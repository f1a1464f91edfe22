"""Data-parallel LeNet on MNIST: 1 process against 2 MPI ranks on this machine.

    python benchmarks/bench_distributed.py [--samples 6400] [--repeat 3]
    python benchmarks/bench_distributed.py --allreduce-only


Reports, for one epoch over ``--samples`` training images: seconds per epoch, samples/s, the
bytes all-reduced per step, and the share of the step spent in the gradient all-reduce
(packing, MPI, unpacking, and waiting for the slower rank). Two settings:
strong scaling (global batch 64: one process x 64, two ranks x 32) and weak scaling (64 per
process). The 1-process runs use no process group (the plain training loop). Reads the real
MNIST from ``../shared/datasets/mnist``. Needs plugrad[mpi].
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import plugrad  # noqa: E402
import plugrad.distributed as dist  # noqa: E402
import plugrad.functional as F  # noqa: E402
import plugrad.optimizer as optim  # noqa: E402
from plugrad.autodiff import GradManager  # noqa: E402
from plugrad.data import DataLoader, SequentialSampler  # noqa: E402
from plugrad.data.dataset import MNIST, ArrayDataset  # noqa: E402
from plugrad.nn import LeNet  # noqa: E402
from timing import best_us  # noqa: E402

MNIST_DIR = Path(__file__).resolve().parent.parent.parent / "shared" / "datasets" / "mnist"


class _TimedAllreduce(dist.AllreduceCallback):
    """The all-reduce callback, timing each bucket it sends."""

    seconds = 0.0
    nbytes = 0

    def _send(self, bucket):
        start = time.perf_counter()
        super()._send(bucket)
        self.seconds += time.perf_counter() - start
        self.nbytes += sum(grad._data.nbytes for _, grad, _ in bucket)


def epoch(samples: int, batch: int) -> dict:
    """One epoch of LeNet over ``samples`` images, ``batch`` per process; times and bytes."""
    plugrad.random.seed(0)
    model = LeNet()
    callback = None
    if dist.is_distributed():
        dist.bcast_list_(model.parameters())
        callback = _TimedAllreduce("mean")
    gm = GradManager().attach(model.parameters(), callbacks=[callback] if callback else None)
    opt = optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    images, labels = MNIST(str(MNIST_DIR), train=True).arrays
    x = np.pad(images[:samples].astype("float32").transpose(0, 3, 1, 2) / 255.0,
               ((0, 0), (0, 0), (2, 2), (2, 2)))
    dataset = ArrayDataset(x, labels[:samples])
    loader = DataLoader(dataset, SequentialSampler(dataset, batch_size=batch))
    steps = 0
    if dist.is_distributed():
        dist.group_barrier()
    start = time.perf_counter()
    for data, label in loader:
        with gm:
            loss = F.nn.cross_entropy(model(plugrad.Tensor(data)), plugrad.Tensor(label))
            gm.backward(loss)
        opt.step().clear_grad()
        steps += 1
    seconds = time.perf_counter() - start
    comm = callback.seconds if callback else 0.0
    sent = callback.nbytes // max(steps, 1) if callback else 0
    alone = 0.0
    if dist.is_distributed():  # the transfer itself: one step's bytes, ranks already in step
        packed = plugrad.Tensor(np.ones(sent // 4, dtype="float32"))
        dist.group_barrier()
        start = time.perf_counter()
        for _ in range(50):
            dist.functional.all_reduce_sum(packed)
        alone = (time.perf_counter() - start) / 50
    return {"seconds": seconds, "steps": steps, "comm": comm, "bytes_per_step": sent,
            "allreduce_ms": 1000 * alone}


def allreduce_latency(sizes: tuple[int, ...], calls: int = 400, rounds: int = 5) -> dict:
    """Microseconds per all-reduce of float32 arrays: MPI's blocking ``Allreduce`` against
    plugrad's path (``Iallreduce`` waited with the collective timeout), interleaved rounds in
    one process, best round of each (``timing.best_us``)."""
    from plugrad.distributed.group import WORLD
    from plugrad.distributed.mpi import MPICommunicator, import_mpi

    comm = WORLD.comm
    ours = MPICommunicator(comm)
    SUM = import_mpi().SUM
    result = {}
    for size in sizes:
        x = np.ones(size, dtype="float32")
        out = np.empty_like(x)
        comm.Barrier()  # every call is a collective, so the ranks stay in step from here
        result[size] = best_us({"blocking": lambda: comm.Allreduce(x, out, op=SUM),
                                "timed": lambda: ours.all_reduce(x, "sum")}, calls, rounds)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=6400)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--allreduce-only", action="store_true",
                        help="only time one all-reduce: blocking MPI against plugrad's timed wait")
    args = parser.parse_args()
    if args.allreduce_only:
        sizes = (1, 1024, 61706)  # a scalar, 4 KB, LeNet's gradients (247 KB)
        ranks = dist.launcher(allreduce_latency, n_gpus=2)(sizes)
        print(f"{'float32 elements':>16} {'blocking Allreduce':>19} {'plugrad (timed wait)':>21}")
        for size in sizes:
            slower = {k: max(r[size][k] for r in ranks) for k in ("blocking", "timed")}
            print(f"{size:16d} {slower['blocking']:16.1f} us {slower['timed']:18.1f} us")
        return
    params = sum(p.size for p in LeNet().parameters())
    print(f"LeNet: {params} parameters = {4 * params} bytes of float32 gradients per step; "
          f"{args.samples} samples per epoch; {os.cpu_count()} cores; best of {args.repeat}")
    print(f"{'setting':<34} {'s/epoch':>8} {'samples/s':>10} {'comm share':>11} "
          f"{'bytes/step':>11} {'all-reduce alone':>17}")
    for label, per_rank in (("strong (global batch 64)", {1: 64, 2: 32}),
                            ("weak (batch 64 per process)", {1: 64, 2: 64})):
        for nproc in (1, 2):
            runs = []
            for _ in range(args.repeat):
                if nproc == 1:  # the plain loop, no process group, both cores for its kernels
                    runs.append(epoch(args.samples, per_rank[1]))
                else:
                    ranks = dist.launcher(epoch, n_gpus=2)(args.samples, per_rank[2])
                    runs.append(max(ranks, key=lambda r: r["seconds"]))
            best = min(runs, key=lambda r: r["seconds"])
            print(f"{label + f', {nproc} proc':<34} {best['seconds']:8.2f} "
                  f"{args.samples / best['seconds']:10.0f} {best['comm'] / best['seconds']:11.1%} "
                  f"{best['bytes_per_step']:11d} {best.get('allreduce_ms', 0):14.3f} ms")


if __name__ == "__main__":
    main()
