"""The one way the benchmarks time things: contenders interleaved in rounds, medians with
minimums beside them, a wall or CPU clock, and PyTorch's thread count set in one place.

On a shared machine single runs drift by 10-20%, so every comparison runs its sides in turn
(a round of each, then the next round) and reports the median; the minimum shows the best the
machine allowed. Compare ratios taken in one run, never numbers from two runs.
"""
from __future__ import annotations

import random
import statistics
import time
import timeit
from collections.abc import Callable
from typing import Any

#: Clocks a benchmark can time with (``--clock``). ``cpu`` is the process's CPU seconds: a
#: loaded machine's waits for a core drop out; fair with one thread per side
#: (``--torch-threads 1``, ``PLUGRAD_NUM_THREADS=1``), since spinning threads count too.
CLOCKS: dict[str, Callable[[], float]] = {"wall": time.perf_counter, "cpu": time.process_time}


def time_rounds(sides: dict[str, Callable[[], Any]], total: int, warmup: int,
                per_round: int = 10, settle: int = 2,
                clock: Callable[[], float] = time.perf_counter) -> dict[str, list[float]]:
    """Seconds per call of each side, the sides interleaved in rounds of ``per_round`` timed
    calls. Each round opens with ``settle`` untimed calls, so one side's lingering threads
    (PyTorch's OpenMP workers spin for a while after a parallel region) and cache contents do
    not land on the next side's clock. The sides run in a new order each round (shuffled, with
    a fixed seed): settling does not undo everything, and a side that always followed the same
    one would always carry what that one leaves behind. After two settling steps, plugrad's
    LeNet steps ran 0.04-0.15 ms slower (medians of the next ten) when they followed PyTorch's
    than when they followed the direct kernels."""
    for fn in sides.values():
        for _ in range(warmup):
            fn()
    times: dict[str, list[float]] = {name: [] for name in sides}
    order = list(sides)
    shuffle = random.Random(0).shuffle
    for _ in range(max(1, total // per_round)):
        shuffle(order)
        for name in order:
            fn = sides[name]
            for _ in range(settle):
                fn()
            for _ in range(per_round):
                start = clock()
                fn()
                times[name].append(clock() - start)
    return times


def paired_differences(first: Callable[[], Any], second: Callable[[], Any], count: int,
                       warmup: int, clock: Callable[[], float] = time.perf_counter
                       ) -> tuple[list[float], tuple[list[float], list[float]]]:
    """Per-pair time differences ``first - second`` and each side's times; the order
    alternates every pair, so a shared machine's drift cancels in the differences (for a small
    difference between two long calls, where medians of each side are too coarse)."""
    for _ in range(warmup):
        first(), second()
    times: tuple[list[float], list[float]] = ([], [])
    for i in range(count):
        for side in ((0, 1) if i % 2 == 0 else (1, 0)):
            fn = first if side == 0 else second
            start = clock()
            fn()
            times[side].append(clock() - start)
    return [a - b for a, b in zip(*times)], times


def median_min_ms(seconds: list[float]) -> tuple[float, float]:
    """(median, minimum) of per-call seconds, in milliseconds."""
    return statistics.median(seconds) * 1e3, min(seconds) * 1e3


def best_us(sides: dict[str, Callable[[], Any]], number: int, rounds: int = 5
            ) -> dict[str, float]:
    """Microseconds per call of each side: the best of ``rounds`` rounds of ``number`` calls,
    the sides interleaved within each round (for calls too short to time one by one)."""
    best = dict.fromkeys(sides, float("inf"))
    for _ in range(rounds):
        for name, fn in sides.items():
            best[name] = min(best[name], timeit.timeit(fn, number=number) / number * 1e6)
    return best


def import_torch(threads: int | None = None) -> Any:
    """PyTorch with ``threads`` intra-op threads (None: its own default), or None when it is
    not installed: every comparison with it is optional."""
    try:
        import torch
    except ImportError:
        return None
    if threads:
        torch.set_num_threads(threads)
    return torch
