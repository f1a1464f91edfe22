"""Where the numpy backend should hold BLAS at one thread, measured on the LeNet step in one
process (sides interleaved in rounds, so the machine's drift hits them alike):

* ``per-kernel``: what the backend does, the limit set and restored around each GEMM kernel;
* ``per-step``: the same kernels unwrapped, the limit held around the whole step (one
  ``ThreadpoolController.limit`` per step: the cheapest any scoping can be);
* ``untouched``: the same kernels unwrapped, BLAS at the process's own thread count.

Each is timed for plugrad's step (Tensors, tape, dispatch) and for the kernels called by hand.

    PYTHONPATH=. python benchmarks/blas_scope_ab.py [--steps 300] [--batch 64]
"""
from __future__ import annotations

import argparse
from typing import Callable

import numpy as np
from lenet_step import initial_state, kernels_step, make_batch, plugrad_step
from threadpoolctl import ThreadpoolController
from timing import median_min_ms, time_rounds

import plugrad
from plugrad.backends.numpy_backend import _blas
from plugrad.backends.numpy_backend.kernels import kernel_table
from plugrad.core import registry


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--batch", type=int, default=64)
    args = parser.parse_args()

    state = initial_state()
    images, labels = make_batch(args.batch)
    controller = ThreadpoolController()
    plain = kernel_table(np)
    wrapped = _blas.scoped(plain)
    assert wrapped["matmul"] is not plain["matmul"], "set PLUGRAD_BLAS_THREADS to 1 or unset it"
    live = registry.dispatch_table(plugrad.Tensor(0.0).device.type)  # what plugrad's ops call
    blas_names = [name for name in _blas.BLAS_KERNELS if name in live]

    def using(table: dict, step: Callable, hold: bool) -> Callable:
        def run():
            live.update({name: table[name] for name in blas_names})
            if hold:
                with controller.limit(limits=1, user_api="blas"):
                    return step()
            return step()
        return run

    sides = {}
    for label, table, hold in (("per-kernel", wrapped, False), ("per-step", plain, True),
                               ("untouched", plain, False)):
        sides[f"plugrad {label}"] = using(table, plugrad_step(state, images, labels), hold)
        sides[f"kernels {label}"] = using(table, kernels_step(state, images, labels, table),
                                          hold)
    info = ", ".join(f"{lib['internal_api']} {lib['num_threads']} threads"
                     for lib in controller.info() if lib["user_api"] == "blas")
    print(f"# BLAS limit placement, LeNet step batch {args.batch} ({info}); ms per step")
    times = time_rounds(sides, args.steps, args.warmup)
    for name, values in times.items():
        median, low = median_min_ms(values)
        print(f"  {name:22s} median {median:7.2f}   min {low:6.2f}")
    live.update({name: wrapped[name] for name in blas_names})


if __name__ == "__main__":
    main()
