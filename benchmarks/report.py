"""plugrad's numpy backend against PyTorch CPU, in one run: the LeNet step (eager and traced
with plugrad.jit.trace), the framework's overhead, the SmallVGG step (3x3 convolutions, batch
norm: benchmarks/vgg_step.py), per-op overhead on small tensors (eager and inside a traced
function), and scaling with the batch size of both models.

    PYTHONPATH=. python benchmarks/report.py [--steps 200] [--batches 16,64,256] [--out FILE]

Every comparison interleaves its contenders in rounds (each round starts with two untimed
steps, the contenders in a shuffled order), so a shared machine's drift hits them alike;
medians are reported with minimums beside them. "kernels" is the LeNet step written by hand
over the numpy backend's kernel functions (no Tensors, tape or dispatch): plugrad's framework
overhead is (plugrad - kernels) / plugrad, and the traced step's (traced - kernels) / traced.
The traced replay's own cost is also timed alone, its kernels replaced by the arrays they
returned.
PyTorch is optional (without it only plugrad and the direct kernels are timed); it runs with its
default thread count unless ``--torch-threads`` is given. ``--clock cpu`` times steps in CPU
seconds of the process instead of wall seconds: on a loaded machine the waits for a core then
drop out; compare that way with one thread per side (``--torch-threads 1`` and
``PLUGRAD_NUM_THREADS=1``), since threads spinning while they wait count as CPU time.
"""
from __future__ import annotations

import argparse
import statistics
import timeit
from typing import Callable

import numpy as np
import vgg_step
from lenet_step import (
    initial_state,
    kernels_step,
    make_batch,
    plugrad_step,
    torch_step,
    traced_step,
)
from timing import CLOCKS, best_us, import_torch, median_min_ms, paired_differences, time_rounds

import plugrad  # noqa: E402
import plugrad.jit  # noqa: E402,F401
from plugrad.autodiff import GradManager  # noqa: E402

torch = import_torch()  # optional: without it only plugrad and the direct kernels are timed
_clock = CLOCKS["wall"]  # the clock steps are timed with (``--clock``)


def lenet(batch: int, steps: int, warmup: int, with_kernels: bool = True) -> dict:
    """Median and minimum ms per step of each side, interleaved in rounds."""
    state = initial_state()
    images, labels = make_batch(batch)
    sides: dict[str, Callable] = {"plugrad": plugrad_step(state, images, labels),
                                  "traced": traced_step(state, images, labels)}
    if with_kernels:
        sides["kernels"] = kernels_step(state, images, labels)
    if torch is not None:
        sides["torch"] = torch_step(state, images, labels)
    times = time_rounds(sides, steps, warmup, clock=_clock)
    return {name: median_min_ms(values) for name, values in times.items()}


def vgg(batch: int, steps: int, warmup: int) -> dict:
    """SmallVGG's step: median and minimum ms of plugrad and PyTorch, interleaved in rounds."""
    state = vgg_step.initial_state()
    images, labels = vgg_step.make_batch(batch)
    sides: dict[str, Callable] = {"plugrad": vgg_step.plugrad_step(state, images, labels)}
    if torch is not None:
        sides["torch"] = vgg_step.torch_step(state, images, labels)
    times = time_rounds(sides, steps, warmup, clock=_clock)
    return {name: median_min_ms(values) for name, values in times.items()}


def vgg_section(result: dict, batch: int) -> list[str]:
    lines = [f"## SmallVGG training step (3x3 convs, batch norm), batch {batch} (median ms, min "
             f"in brackets)"]
    for name, (median, low) in result.items():
        lines.append(f"  {name:8s} {median:7.2f}  ({low:.2f})")
    if "torch" in result:
        plug = result["plugrad"]
        lines.append(f"  plugrad / torch:    {plug[0] / result['torch'][0]:5.2f}   "
                     f"(minimums {plug[1] / result['torch'][1]:.2f})")
    return lines


def step_section(result: dict, batch: int) -> list[str]:
    lines = [f"## LeNet training step, batch {batch} (median ms, min in brackets)"]
    for name, (median, low) in result.items():
        lines.append(f"  {name:8s} {median:7.2f}  ({low:.2f})")
    kern = result["kernels"]
    for name in ("plugrad", "traced"):
        side = result[name]
        lines.append(f"  {name} framework overhead: {(side[0] - kern[0]) / side[0] * 100:5.1f}% "
                     f"of the step (medians; {(side[1] - kern[1]) / side[1] * 100:.1f}% on "
                     f"minimums)")
    plug = result["plugrad"]
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


def _add_sum_backward() -> dict[str, Callable]:
    """One tiny training step, ``(w + x).sum()`` and its backward, on 4x4 float32: the per-op
    cost of recording and walking the tape."""
    rng = np.random.default_rng(0)
    a, b = (rng.random((4, 4), dtype=np.float32) for _ in range(2))
    w, x = plugrad.Parameter(a), plugrad.Tensor(b)
    gm = GradManager().attach([w])

    def plugrad_step() -> None:
        with gm:
            gm.backward((w + x).sum())
        w.grad = None

    sides = {"plugrad": plugrad_step}
    if torch is not None:
        tw, tx = torch.tensor(a, requires_grad=True), torch.tensor(b)

        def torch_step() -> None:
            (tw + tx).sum().backward()
            tw.grad = None
        sides["torch"] = torch_step
    return sides


def op_section(number: int = 20000, rounds: int = 5) -> list[str]:
    """Best-of-rounds microseconds per call; contenders interleaved within each round."""
    ops = _small_ops()
    names = list(next(iter(ops.values())))
    lines = ["## Per-op time on 4x4 float32 (us per call, best of rounds)",
             "  op      " + "".join(f"{name:>9s}" for name in names) + "  plugrad-numpy"]
    for op, contenders in ops.items():
        best = best_us(contenders, number, rounds)
        row = "".join(f"{best[name]:9.2f}" for name in names)
        lines.append(f"  {op:8s}{row}  {best['plugrad'] - best['numpy']:+8.2f}")
    best = best_us(_add_sum_backward(), number // 4, rounds)
    line = f"  add-sum-backward under a GradManager: plugrad {best['plugrad']:.2f} us"
    if "torch" in best:
        line += (f", torch {best['torch']:.2f} us (plugrad / torch "
                 f"{best['plugrad'] / best['torch']:.2f})")
    return lines + [line]


def _stubbed_plan(program, run) -> list:
    """``program``'s plan with every kernel (and the optimizer's host update) replaced by the
    value it returned when ``run`` ran the real plan once: what remains is the replay's own
    work (the slot loop, state loads, gradient writes)."""
    returned: dict[int, object] = {}

    def keep(kernel, slot):
        def call(*arrays, **attrs):
            returned[slot] = out = kernel(*arrays, **attrs)
            return out
        return call

    real = program.plan
    program.plan = [(keep(fn, out), gather, attrs, out) for fn, gather, attrs, out in real]
    run()
    program.plan = real
    own = ("<load>", "<set data>", "<set grad>", "<free>")
    return [(fn, gather, attrs, out) if step.op in own
            else ((lambda value: lambda *a, **k: value)(returned[out]), gather, attrs, out)
            for step, (fn, gather, attrs, out) in zip(program.steps, real)]


def _unrolled(program, inputs) -> Callable[[], object]:
    """``program``'s kernels called directly, as straight-line code over local variables: the
    same calls the replay makes, without its loop and slot list."""
    names, lines = {}, ["def run(inputs):"]
    lines += [f"    s{slot} = inputs[{i}]._data" for i, slot in enumerate(program.inputs)]
    for slot in program.constants:
        lines.append(f"    s{slot} = const{slot}")
        names[f"const{slot}"] = program.constants[slot]
    for i, step in enumerate(program.steps):
        names[f"f{i}"], names[f"a{i}"] = step.fn, step.attrs
        args = "".join(f"s{slot}, " for slot in step.inputs)
        lines.append(f"    s{step.out} = f{i}({args}**a{i})")
    lines.append(f"    return s{program.outputs[0][0]}")
    exec("\n".join(lines), names)  # noqa: S102  (code generated from the program above)
    run = names["run"]
    return lambda: run(inputs)


def traced_section(batch: int, steps: int, warmup: int, rounds: int = 5) -> list[str]:
    """The traced LeNet step against the same kernels called directly, the replay's own time,
    and a 4x4 add inside a traced function."""
    state, (images, labels) = initial_state(), make_batch(batch)
    step = traced_step(state, images, labels)
    for _ in range(3):
        step()
    program = next(iter(step.trace.programs.values()))
    direct = traced_step(state, images, labels)
    for _ in range(3):
        direct()
    same_kernels = _unrolled(next(iter(direct.trace.programs.values())), direct.inputs)
    differences, times = paired_differences(step, same_kernels, steps * 2, warmup)
    (traced, traced_min), (kernels, kernels_min) = (median_min_ms(times[k]) for k in (0, 1))
    real, program.plan = program.plan, _stubbed_plan(program, step)
    alone = min(timeit.repeat(step, number=steps, repeat=rounds)) / steps * 1e3
    program.plan = real
    lines = [f"## Traced LeNet step, batch {batch}: {len(program.steps)} replay steps, "
             f"{program.kernel_calls} of them kernels (median ms, min in brackets)",
             f"  traced         {traced:7.2f}  ({traced_min:.2f})",
             f"  same kernels   {kernels:7.2f}  ({kernels_min:.2f})   (the recorded calls "
             f"unrolled into straight-line code)",
             f"  replay overhead: {statistics.median(differences) * 1e6:+.1f} us = "
             f"{statistics.median(differences) * 1e3 / traced * 100:+.2f}% of the step (median of "
             f"the paired differences; medians alone: "
             f"{(traced - kernels) / traced * 100:+.2f}%)",
             f"  replay alone (kernels and optimizer update stubbed): {alone * 1e3:6.1f} us = "
             f"{alone / traced_min * 100:.2f}% of the fastest traced step"]
    chain = 100
    a, b = (plugrad.Tensor(np.full((4, 4), v, np.float32)) for v in (1.0, 0.5))
    x, y = a._data, b._data
    add = a.device.kernels["add"]

    @plugrad.jit.trace(symbolic=True)
    def adds(p, q):
        for _ in range(chain):
            p = p + q
        return p

    adds(a, b)
    number = 2000
    per_op = min(timeit.repeat(lambda: adds(a, b), number=number, repeat=rounds)) \
        / (number * chain)
    direct = {name: min(timeit.repeat(fn, number=number * chain, repeat=rounds))
              / (number * chain) for name, fn in (("kernel", lambda: add(x, y)),
                                                  ("numpy", lambda: x + y))}
    lines.append(f"  4x4 add inside a traced function ({chain} adds per call): {per_op * 1e6:.2f} "
                 f"us per op; the backend's add kernel called directly {direct['kernel'] * 1e6:.2f}"
                 f" us (numpy's a + b {direct['numpy'] * 1e6:.2f} us): replay cost "
                 f"{(per_op - direct['kernel']) * 1e6:+.2f} us per op")
    return lines


def scaling_section(batches: list[int], steps: int, warmup: int, model: str = "LeNet"
                    ) -> list[str]:
    timed = lenet if model == "LeNet" else vgg
    lines = [f"## {model} batch scaling (median ms per step; min in brackets)",
             "  batch     plugrad          kernels          torch            plugrad/torch"]
    for batch in batches:
        result = timed(batch, steps, warmup)
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
    parser.add_argument("--clock", choices=sorted(CLOCKS), default="wall",
                        help="time steps in wall seconds or in the process's CPU seconds")
    parser.add_argument("--out", help="also write the report to this file")
    args = parser.parse_args()
    global _clock
    _clock = CLOCKS[args.clock]
    header = [f"numpy {np.__version__}", f"{args.clock} clock"]
    if torch is not None:
        import_torch(args.torch_threads)
        header.append(f"torch {torch.__version__} ({torch.get_num_threads()} threads)")
    from plugrad.backends.numpy_backend import _blas, _threads, compiled, ort_conv

    plugrad.Tensor(0.0)  # load the numpy backend (its BLAS and thread settings)
    header.append(f"plugrad numpy backend: {_threads.num_threads()} kernel threads, BLAS "
                  f"threads in its GEMMs {_blas.blas_threads() or 'untouched'}, convolutions "
                  f"on {'onnxruntime' if ort_conv.available() else 'NumPy'}, compiled loops "
                  f"{'on (numba)' if compiled.available() else 'off'}")
    lines = ["# plugrad vs PyTorch CPU: " + ", ".join(header), ""]
    lines += step_section(lenet(args.batch, args.steps, args.warmup), args.batch) + [""]
    lines += traced_section(args.batch, args.steps, args.warmup) + [""]
    vgg_steps = max(args.steps // 4, 20)  # a SmallVGG step is ~10 LeNet steps
    lines += vgg_section(vgg(args.batch, vgg_steps, args.warmup // 4), args.batch) + [""]
    lines += op_section() + [""]
    batches = [int(b) for b in args.batches.split(",") if b.strip()]
    if batches:
        lines += scaling_section(batches, max(args.steps // 2, 20), args.warmup) + [""]
        lines += scaling_section(batches, max(args.steps // 8, 10), args.warmup // 4, "SmallVGG")
    text = "\n".join(lines)
    print(text)
    if args.out:
        with open(args.out, "w") as handle:
            handle.write(text + "\n")


if __name__ == "__main__":
    main()
