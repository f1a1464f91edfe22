"""Where a training step's milliseconds go on the numpy backend: LeNet's, or SmallVGG's
(``--model vgg``: 3x3 convolutions and batch norm, benchmarks/vgg_step.py).

    PYTHONPATH=. python benchmarks/profile_lenet_step.py [--model lenet|vgg] [--steps 100]
        [--batch 64] [--clock wall|cpu] [--out FILE]

The step is the one ``report.py`` times (batch 64, SGD with momentum and weight decay,
cross-entropy). Each phase (forward, backward, optimizer) is timed around its call; every kernel
of the device's dispatch table is wrapped with a timer that books its time under the running
phase, and the tape's own work (recording nodes, accumulating into ``.grad``) is timed
the same way. What a phase spends outside kernels is the framework's Python time (dispatch,
functional checks, Module calls, vjps, the backward walk). The timers'
own cost is measured and subtracted, and the same step is also timed without instrumentation,
beside the numpy kernels called directly (``lenet_step.kernels_step``), in interleaved rounds.

Allocation is inside the kernels' time (NumPy allocates their outputs); the table shows the bytes
kernels return per step and the minor page faults per step (what a trimmed heap costs).
"""
from __future__ import annotations

import argparse
import gc
import resource
import statistics
from collections import defaultdict
from typing import Callable

import lenet_step
import vgg_step
from timing import CLOCKS, median_min_ms, time_rounds

import plugrad.core.dispatch as dispatch  # noqa: E402
from plugrad.autodiff import GradManager  # noqa: E402

#: The clock everything is timed with (``--clock``): wall seconds, or CPU seconds, which a
#: loaded machine's waits for a core do not inflate (with ``PLUGRAD_NUM_THREADS=1``, so that
#: no kernel's worker threads add to the time of the call that waits for them).
_clock = CLOCKS["wall"]


class Recorder:
    """Per (phase, name) call counts and seconds; ``phase`` is set by the step being profiled."""

    def __init__(self) -> None:
        self.phase = "other"
        self.calls: dict[tuple[str, str], int] = defaultdict(int)
        self.seconds: dict[tuple[str, str], float] = defaultdict(float)
        self.out_bytes = 0
        self._nested: list[float] = []  # time of wrapped calls inside the running wrapped call

    def timed(self, name: str, fn: Callable, count_bytes: bool = False) -> Callable:
        """``fn`` booking its exclusive time (less wrapped calls inside it) under ``name``."""
        nested = self._nested

        def wrapper(*args, **kwargs):
            nested.append(0.0)
            start = _clock()
            try:
                out = fn(*args, **kwargs)
            finally:
                elapsed = _clock() - start
                inner = nested.pop()
                if nested:
                    nested[-1] += elapsed
            key = (self.phase, name)
            self.seconds[key] += elapsed - inner
            self.calls[key] += 1
            if count_bytes:
                self.out_bytes += getattr(out, "nbytes", 0)
            return out
        return wrapper

    def reset(self) -> None:
        self.calls.clear()
        self.seconds.clear()
        self.out_bytes = 0


def _wrapper_cost(recorder: Recorder, calls: int = 20000) -> float:
    """Seconds one timing wrapper adds to a call (measured on a no-op)."""
    def noop(*args, **kwargs):
        return None
    wrapped = recorder.timed("calibrate", noop)
    best = float("inf")
    for _ in range(5):
        start = _clock()
        for _ in range(calls):
            noop(1, axis=0)
        bare = _clock() - start
        start = _clock()
        for _ in range(calls):
            wrapped(1, axis=0)
        best = min(best, (_clock() - start - bare) / calls)
    recorder.reset()
    return max(best, 0.0)


#: The benchmark models: each module builds its step from (state, images, labels); LeNet's also
#: has the same step over the kernels called directly.
MODELS = {"lenet": lenet_step, "vgg": vgg_step}


def profile(batch: int, steps: int, warmup: int, model_name: str = "lenet") -> dict:
    bench = MODELS[model_name]
    state = bench.initial_state()
    images, labels = bench.make_batch(batch)
    model, gm, opt, x, y = bench.plugrad_parts(state, images, labels)
    import plugrad.functional as F

    recorder = Recorder()
    cost = _wrapper_cost(recorder)
    table = x._device.kernels  # the device type's dispatch dict, shared by its devices
    originals = dict(table)
    patched = {"record": dispatch.record, "accumulate": GradManager._accumulate}
    per_step: list[dict] = []
    faults: list[int] = []

    def step() -> None:
        recorder.phase = "forward"
        t0 = _clock()
        gm.record()
        loss = F.nn.cross_entropy(model(x), y)
        t1 = _clock()
        recorder.phase = "backward"
        gm.backward(loss)
        t2 = _clock()
        recorder.phase = "optimizer"
        opt.step().clear_grad()
        t3 = _clock()
        recorder.phase = "other"
        per_step.append({"phases": {"forward": t1 - t0, "backward": t2 - t1,
                                    "optimizer": t3 - t2},
                         "seconds": dict(recorder.seconds), "calls": dict(recorder.calls),
                         "out_bytes": recorder.out_bytes})
        recorder.reset()

    try:
        for name, fn in originals.items():
            table[name] = recorder.timed(name, fn, count_bytes=True)
        dispatch.record = recorder.timed("tape: record nodes", patched["record"])
        GradManager._accumulate = recorder.timed("tape: accumulate .grad",
                                                 patched["accumulate"])
        for _ in range(warmup):
            step()
        per_step.clear()
        gc.collect()
        for _ in range(steps):
            before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            step()
            faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
    finally:
        table.update(originals)
        dispatch.record = patched["record"]
        GradManager._accumulate = patched["accumulate"]

    return {"per_step": per_step, "cost": cost, "out_bytes": per_step[-1]["out_bytes"],
            "faults": statistics.median(faults), "state": state, "images": images,
            "labels": labels, "model": model_name}


def report(result: dict, timed_rounds: int) -> str:
    """The table: per-step medians of each row (robust to a shared machine's stalls)."""
    per_step: list[dict] = result["per_step"]
    cost = result["cost"]
    lines = []
    bench = MODELS[result["model"]]
    inputs = (result["state"], result["images"], result["labels"])
    bare = {"plugrad": bench.plugrad_step(*inputs)}
    if hasattr(bench, "kernels_step"):
        bare["kernels"] = bench.kernels_step(*inputs)
    times = time_rounds(bare, timed_rounds * 10, warmup=10, settle=1, clock=_clock)
    med, low = {}, {}
    for name, values in times.items():
        med[name], low[name] = median_min_ms(values)
    batch = len(result["images"])
    title = {"lenet": "LeNet", "vgg": "SmallVGG"}[result["model"]]
    lines.append(f"{title} training step, batch {batch}, numpy backend: medians over "
                 f"{len(per_step)} profiled steps (timer cost {cost * 1e6:.2f} us per wrapped "
                 f"call, subtracted)")
    bare_line = f"uninstrumented, interleaved: plugrad {med['plugrad']:.2f} ms (min " \
                f"{low['plugrad']:.2f})"
    if "kernels" in med:
        bare_line += (f", kernels called directly {med['kernels']:.2f} ms (min "
                      f"{low['kernels']:.2f}); framework overhead {_overhead(med):.1f}% of the "
                      f"step (medians), {_overhead(low):.1f}% (minimums)")
    lines.append(bare_line)
    lines.append("")
    lines.append(f"{'phase':<10} {'item':<32} {'calls':>5} {'ms/step':>8} {'% step':>7}")

    def median_ms(values) -> float:
        return statistics.median(values) * 1e3

    rows = []  # (phase, item, calls, ms)
    for phase in ("forward", "backward", "optimizer"):
        keys = sorted({key for step in per_step for key in step["seconds"] if key[0] == phase})
        kernel_keys = [k for k in keys if not k[1].startswith("tape")]
        tape_keys = [k for k in keys if k[1].startswith("tape")]
        phase_rows = []
        for key in kernel_keys + tape_keys:
            label = key[1] if key in tape_keys else f"kernel {key[1]}"
            phase_rows.append((phase, label, per_step[0]["calls"].get(key, 0),
                               median_ms([step["seconds"].get(key, 0.0) for step in per_step])))
        kernels = sorted(phase_rows[:len(kernel_keys)], key=lambda r: -r[3])
        rows += kernels + phase_rows[len(kernel_keys):]
        # Python time of a step: the phase's wall time less every wrapped call (and its timer)
        rest = median_ms([step["phases"][phase] - sum(step["seconds"].get(k, 0.0) for k in keys)
                          - cost * sum(step["calls"].get(k, 0) for k in keys)
                          for step in per_step])
        label = "framework Python (rest)" if phase != "optimizer" else "update loop (Python)"
        rows.append((phase, label, None, rest))
        rows.append((phase, "= phase total", None, sum(r[3] for r in phase_rows) + rest))
    total = sum(r[3] for r in rows if r[1] == "= phase total")
    for phase, item, calls, value in rows:
        count = "" if calls is None else str(calls)
        lines.append(f"{phase:<10} {item:<32} {count:>5} {value:8.3f} {value / total * 100:6.1f}%")
        if item == "= phase total":
            lines.append("")
    kernel_total = sum(r[3] for r in rows if r[1].startswith("kernel "))
    lines.append(f"step (sum of phases) {total:.3f} ms: kernels {kernel_total:.3f} ms "
                 f"({kernel_total / total * 100:.1f}%), the rest {total - kernel_total:.3f} ms")
    lines.append(f"kernel outputs: {result['out_bytes'] / 2**20:.2f} MiB per step; minor page "
                 f"faults per step (median): {result['faults']:.0f}")
    return "\n".join(lines)


def _overhead(values: dict) -> float:
    return (values["plugrad"] - values["kernels"]) / values["plugrad"] * 100


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100, help="profiled steps")
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=10,
                        help="interleaved rounds of 10 uninstrumented steps per side")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--model", choices=sorted(MODELS), default="lenet")
    parser.add_argument("--clock", choices=sorted(CLOCKS), default="wall")
    parser.add_argument("--out", help="also write the table to this file")
    args = parser.parse_args()
    global _clock
    _clock = CLOCKS[args.clock]
    text = report(profile(args.batch, args.steps, args.warmup, args.model), args.rounds)
    print(text)
    if args.out:
        with open(args.out, "w") as handle:
            handle.write(text + "\n")


if __name__ == "__main__":
    main()
