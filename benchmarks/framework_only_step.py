"""The LeNet step's framework cost alone: every kernel call replays the array it returned in a
recorded step, so what remains is plugrad's Python (Modules, functional checks, dispatch, the
tape, the backward walk, GradManager, the optimizer's loop).

    PYTHONPATH=. python benchmarks/framework_only_step.py [--batch 64] [--steps 3000]
    PYTHONPATH=. python benchmarks/framework_only_step.py --between kernels

By default nothing runs between the framework's lines, so caches and branch predictors stay
warm and the number is steady (a few percent from run to run) where the full step's is not. In
a real step the same Python runs after each kernel and costs about twice as much. ``--between``
shows why, off the clock: ``reads`` reads every array the kernel read and wrote (the data it
moves through the caches), ``kernels`` runs the real kernel on copies of its recorded inputs
(its code too). Measure a change to the framework's own code with the default, and check with
``--between kernels`` that it holds where it matters (see benchmarks/README.md).
"""
from __future__ import annotations

import argparse
import time
from typing import Any, Callable

import numpy as np
from lenet_step import initial_state, make_batch, plugrad_step
from timing import median_min_ms, time_rounds

from plugrad.core.device import get_device


def _arrays(value: Any) -> list[np.ndarray]:
    if isinstance(value, np.ndarray):
        return [value]
    if isinstance(value, (tuple, list)):
        return [a for item in value for a in _arrays(item)]
    return []


def _between(mode: str, kernel: Callable, inputs: tuple, attrs: dict, out: Any) -> Callable:
    """What runs before a replayed kernel returns, off the clock (``reads`` or ``kernels``)."""
    if mode == "reads":
        touched = [a for a in _arrays(inputs) + _arrays(out) if a.size]
        return lambda: [a.max() for a in touched]
    copies = tuple(a.copy() if isinstance(a, np.ndarray) else a for a in inputs)
    return lambda: kernel(*copies, **attrs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--between", choices=("nothing", "reads", "kernels"), default="nothing",
                        help="what each replayed kernel runs first, off the clock")
    args = parser.parse_args()

    table = get_device("cpu0").kernels
    real = dict(table)
    recorded: list = []  # (output, what runs before it is returned)
    cursor = [0]
    hidden = [0.0]  # seconds spent off the clock so far; only grows

    def recording(name):
        def kernel(*inputs, **attrs):
            out = real[name](*inputs, **attrs)
            before = None if args.between == "nothing" else _between(
                args.between, real[name], inputs, attrs, out)
            recorded.append((out, before))
            return out
        return kernel

    def replay(*inputs, **attrs):
        out, _ = recorded[cursor[0]]
        cursor[0] += 1
        return out

    def replay_after(*inputs, **attrs):
        out, before = recorded[cursor[0]]
        cursor[0] += 1
        start = time.perf_counter()
        before()
        hidden[0] += time.perf_counter() - start
        return out

    step = plugrad_step(initial_state(), *make_batch(args.batch))

    def replayed_step() -> None:
        cursor[0] = 0
        step()

    def clock() -> float:  # differences of it leave out what ran off the clock
        return time.perf_counter() - hidden[0]

    step()  # untimed and unrecorded: one-time work (the momentum buffers) happens here
    try:
        table.update({name: recording(name) for name in real})
        step()
        table.update(dict.fromkeys(real, replay_after if args.between != "nothing" else replay))
        steps = args.steps if args.between == "nothing" else max(300, args.steps // 5)
        times = time_rounds({"replayed": replayed_step}, steps, warmup=steps // 10, settle=0,
                            clock=clock)["replayed"]
    finally:
        table.update(real)
    median, low = median_min_ms(times)
    between = "" if args.between == "nothing" else f", {args.between} between them off the clock"
    print(f"LeNet step, batch {args.batch}, kernels replayed ({len(recorded)} calls{between}): "
          f"median {median * 1e3:.1f} us, min {low * 1e3:.1f} us")


if __name__ == "__main__":
    main()
