"""The LeNet step's framework cost alone: every kernel call replays the array it returned in a
recorded step, so what remains is plugrad's Python (Modules, functional checks, dispatch, the
tape, the backward walk, GradManager) plus the optimizer's NumPy updates.

    PYTHONPATH=. python benchmarks/framework_only_step.py [--batch 64] [--steps 3000]

Kernels take no time here and caches stay warm, so this number is steady (a few percent from
run to run) where the full step's is not: use it to measure a change to the framework's own
code. In a real step the same Python runs between large kernels, with cold caches, and costs
about twice as much (see benchmarks/README.md).
"""
from __future__ import annotations

import argparse

from lenet_step import initial_state, make_batch, plugrad_step
from timing import median_min_ms, time_rounds

from plugrad.core.device import get_device


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=3000)
    args = parser.parse_args()

    table = get_device("cpu0").kernels
    real = dict(table)
    recorded: list = []
    cursor = [0]

    def recording(name):
        def kernel(*inputs, **attrs):
            out = real[name](*inputs, **attrs)
            recorded.append(out)
            return out
        return kernel

    def replay(*inputs, **attrs):
        out = recorded[cursor[0]]
        cursor[0] += 1
        return out

    step = plugrad_step(initial_state(), *make_batch(args.batch))

    def replayed_step() -> None:
        cursor[0] = 0
        step()

    step()  # untimed and unrecorded: one-time work (the momentum buffers) happens here
    try:
        table.update({name: recording(name) for name in real})
        step()
        table.update(dict.fromkeys(real, replay))
        times = time_rounds({"replayed": replayed_step}, args.steps, warmup=args.steps // 10,
                            settle=0)["replayed"]
    finally:
        table.update(real)
    median, low = median_min_ms(times)
    print(f"LeNet step, batch {args.batch}, kernels replayed ({len(recorded)} calls): "
          f"median {median * 1e3:.1f} us, min {low * 1e3:.1f} us")


if __name__ == "__main__":
    main()
