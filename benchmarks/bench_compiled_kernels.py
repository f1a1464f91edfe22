"""The numpy backend's compiled kernels (numba) against its NumPy ones, and their compile time.

    PYTHONPATH=. python benchmarks/bench_compiled_kernels.py [--rounds 15]

Per kernel, on the activations of SmallVGG (benchmarks/vgg_step.py) and LeNet at batch 64, one
thread (the backend's batch split off): batch norm's four kernels, ReLU and its gradient, 2x2
max pooling and its gradient; LeNet's conv1 weight gradient (one input channel), against
NumPy's im2col kernel and onnxruntime's (what runs without numba); and the softmax
cross-entropy and its gradient on MNIST's logits (batch 16, 64, 256; 10 classes) and on 32
classes, the most the loops take; the SGD update (momentum, weight decay) of LeNet's and
SmallVGG's parameters, one call per parameter as the optimizer makes them. Each side is timed in
interleaved rounds; the table shows medians in ms and compiled / NumPy. Then the compile time,
in fresh processes with an empty numba cache directory: the first float32 call of every loop
(compiling), then the same in a second process (loading numba's cache), each beside
``import numba`` alone.
"""
from __future__ import annotations

import argparse
import functools
import os
import subprocess
import sys
import tempfile

import numpy as np
from timing import median_min_ms, time_rounds

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
os.environ["PLUGRAD_NUM_THREADS"] = "1"  # kernels on one thread: the loops, not the split

from plugrad.backends.numpy_backend import compiled, kernels, ort_conv  # noqa: E402

#: (model, shape of the activation) at batch 64: SmallVGG's conv outputs, LeNet's.
SHAPES = [("SmallVGG", (64, 16, 32, 32)), ("SmallVGG", (64, 32, 16, 16)),
          ("SmallVGG", (64, 64, 4, 4)), ("LeNet", (64, 6, 24, 24)), ("LeNet", (64, 16, 8, 8))]
AXES = (0, 2, 3)
POOL = dict(kernel_size=(2, 2), stride=(2, 2), padding=(0, 0))

FIRST_CALLS = """
import time
start = time.perf_counter()
import numba
imported = time.perf_counter()
import numpy as np
from plugrad.backends.numpy_backend import compiled, kernels
table = compiled.kernels(kernels.kernel_table(np))
x = np.ones((2, 3, 4, 4), np.float32); w = np.ones((1, 3, 1, 1), np.float32)
stats = table["batch_norm_stats"](x, axes=(0, 2, 3))
table["batch_norm"](x, w, w, stats, axes=(0, 2, 3), eps=1e-5)
params = table["batch_norm_grad_params"](x, x, stats, axes=(0, 2, 3), eps=1e-5)
table["batch_norm_grad_input"](x, x, w, stats, params, axes=(0, 2, 3), eps=1e-5)
y = table["relu"](x); table["relu_grad"](x, y)
pool = dict(kernel_size=(2, 2), stride=(2, 2), padding=(0, 0))
p = table["max_pool2d"](x, **pool); table["max_pool2d_grad"](p, x, p, **pool)
x = np.ones((2, 1, 28, 28), np.float32); g = np.ones((2, 6, 24, 24), np.float32)
table["conv2d_grad_weight"](g, x, weight_shape=(6, 1, 5, 5), stride=(1, 1), padding=(0, 0),
                            dilation=(1, 1), groups=1)
logits, label = np.ones((4, 10), np.float32), np.zeros(4, np.int32)
table["softmax_cross_entropy"](logits, label, axis=1)
table["softmax_cross_entropy_grad"](np.ones(4, np.float32), logits, label, axis=1)
sgd = dict(lr=0.1, momentum=0.9, nesterov=False, weight_decay=1e-4)
table["sgd_update"](logits, logits.copy(), logits.copy(), **sgd)
table["sgd_update"](logits, logits.copy(), **{**sgd, "momentum": 0.0})
print(imported - start, time.perf_counter() - imported)
"""


def sides(table: dict, shape: tuple) -> dict[str, dict]:
    """kernel -> {'numpy': call, 'compiled': call} on one activation shape."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape).astype(np.float32)
    g = rng.standard_normal(shape).astype(np.float32)
    c = shape[1]
    w = rng.random((1, c, 1, 1)).astype(np.float32) + 0.5
    b = rng.standard_normal((1, c, 1, 1)).astype(np.float32)
    stats = table["batch_norm_stats"](x, axes=AXES)
    params = table["batch_norm_grad_params"](g, x, stats, axes=AXES, eps=1e-5)
    y = table["relu"](x)
    pooled = table["max_pool2d"](x, **POOL)
    gp = rng.standard_normal(pooled.shape).astype(np.float32)
    return {
        "batch_norm_stats": lambda t: t["batch_norm_stats"](x, axes=AXES),
        "batch_norm": lambda t: t["batch_norm"](x, w, b, stats, axes=AXES, eps=1e-5),
        "batch_norm_grad_params": lambda t: t["batch_norm_grad_params"](
            g, x, stats, axes=AXES, eps=1e-5),
        "batch_norm_grad_input": lambda t: t["batch_norm_grad_input"](
            g, x, w, stats, params, axes=AXES, eps=1e-5),
        "relu": lambda t: t["relu"](x),
        "relu_grad": lambda t: t["relu_grad"](g, y),
        "max_pool2d": lambda t: t["max_pool2d"](x, **POOL),
        "max_pool2d_grad": lambda t: t["max_pool2d_grad"](gp, x, pooled, **POOL),
    }


def grad_weight_row(rounds: int, numpy_table: dict, compiled_table: dict) -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 1, 28, 28)).astype(np.float32)
    g = rng.standard_normal((64, 6, 24, 24)).astype(np.float32)
    attrs = dict(weight_shape=(6, 1, 5, 5), stride=(1, 1), padding=(0, 0), dilation=(1, 1),
                 groups=1)
    contenders = {"numpy": lambda: numpy_table["conv2d_grad_weight"](g, x, **attrs),
                  "compiled": lambda: compiled_table["conv2d_grad_weight"](g, x, **attrs)}
    if ort_conv.available():
        ort = ort_conv.kernels(numpy_table)["conv2d_grad_weight"]
        contenders["onnxruntime"] = lambda: ort(g, x, **attrs)
    times = time_rounds(contenders, rounds * 5, warmup=3, per_round=5)
    med = {side: median_min_ms(t)[0] for side, t in times.items()}
    print(f"{'LeNet':<9} {'conv1 (64,1,28,28)':<18} {'conv2d_grad_weight':<24} "
          f"{med['numpy']:9.3f} {med['compiled']:9.3f} {med['compiled'] / med['numpy']:6.2f}"
          + (f"   (onnxruntime's {med['onnxruntime']:.3f})" if "onnxruntime" in med else ""))


def cross_entropy_rows(rounds: int, numpy_table: dict, compiled_table: dict) -> None:
    rng = np.random.default_rng(0)
    for batch, classes in ((16, 10), (64, 10), (256, 10), (64, compiled.MAX_CLASSES)):
        x = rng.standard_normal((batch, classes)).astype(np.float32)
        label = rng.integers(0, classes, batch).astype(np.int32)
        g = np.full(batch, 1 / batch, np.float32)
        for name, args in (("softmax_cross_entropy", (x, label)),
                           ("softmax_cross_entropy_grad", (g, x, label))):
            contenders = {side: lambda t=table, a=args, n=name: t[n](*a, axis=1)
                          for side, table in (("numpy", numpy_table),
                                              ("compiled", compiled_table))}
            times = time_rounds(contenders, rounds * 5, warmup=3, per_round=5)
            med = {side: median_min_ms(t)[0] for side, t in times.items()}
            print(f"{'logits':<9} {str((batch, classes)):<18} {name:<26} "
                  f"{med['numpy']:7.4f} {med['compiled']:9.4f} "
                  f"{med['compiled'] / med['numpy']:6.2f}")


def _sgd_step(table: dict, params: dict, grads: dict, buffers: dict, settings: dict) -> None:
    for name, value in params.items():
        table["sgd_update"](value, grads[name], buffers[name], **settings)


def sgd_rows(rounds: int, numpy_table: dict, compiled_table: dict) -> None:
    """Each model's SGD step: ``sgd_update`` on every parameter, as ``optimizer.SGD`` calls it."""
    import lenet_step
    import vgg_step

    settings = dict(lr=lenet_step.LR, momentum=lenet_step.MOMENTUM, nesterov=False,
                    weight_decay=lenet_step.WEIGHT_DECAY)
    for model, state in (("LeNet", lenet_step.initial_state()),
                         ("SmallVGG", vgg_step.initial_state())):
        state = {name: value for name, value in state.items() if value.dtype.kind == "f"
                 and "running" not in name}
        rng = np.random.default_rng(0)
        grads = {name: rng.standard_normal(v.shape).astype(v.dtype) for name, v in state.items()}

        contenders = {}
        for side, table in (("numpy", numpy_table), ("compiled", compiled_table)):
            params = {name: value.copy() for name, value in state.items()}
            buffers = {name: np.zeros_like(value) for name, value in state.items()}
            contenders[side] = functools.partial(_sgd_step, table, params, grads, buffers,
                                                 settings)
        times = time_rounds(contenders, rounds * 5, warmup=3, per_round=5)
        med = {side: median_min_ms(t)[0] for side, t in times.items()}
        size = sum(v.size for v in state.values())
        print(f"{model:<9} {f'{len(state)} params, {size}':<18} {'sgd_update':<24} "
              f"{med['numpy']:9.3f} {med['compiled']:9.3f} {med['compiled'] / med['numpy']:6.2f}")


def kernel_table(rounds: int) -> None:
    numpy_table = kernels.kernel_table(np)
    compiled_table = {**numpy_table, **compiled.kernels(numpy_table)}
    print(f"{'model':<9} {'shape':<18} {'kernel':<24} {'numpy ms':>9} {'compiled':>9} "
          f"{'ratio':>6}")
    totals = {"numpy": 0.0, "compiled": 0.0}
    for model, shape in SHAPES:
        for name, call in sides(numpy_table, shape).items():
            contenders = {"numpy": lambda c=call: c(numpy_table),
                          "compiled": lambda c=call: c(compiled_table)}
            times = time_rounds(contenders, rounds * 5, warmup=3, per_round=5)
            med = {side: median_min_ms(t)[0] for side, t in times.items()}
            for side in totals:
                totals[side] += med[side]
            print(f"{model:<9} {str(shape):<18} {name:<24} {med['numpy']:9.3f} "
                  f"{med['compiled']:9.3f} {med['compiled'] / med['numpy']:6.2f}")
    print(f"{'all':<52} {totals['numpy']:9.3f} {totals['compiled']:9.3f} "
          f"{totals['compiled'] / totals['numpy']:6.2f}")
    grad_weight_row(rounds, numpy_table, compiled_table)
    cross_entropy_rows(rounds, numpy_table, compiled_table)
    sgd_rows(rounds, numpy_table, compiled_table)


def compile_times() -> None:
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "NUMBA_CACHE_DIR": cache}
        for label in ("first process (compiles)", "second process (numba's cache)"):
            done = subprocess.run([sys.executable, "-c", FIRST_CALLS], capture_output=True,
                                  text=True, env=env, check=True)
            imported, first_calls = (float(v) for v in done.stdout.split())
            print(f"{label:<32} import numba {imported:.2f} s, first call of every loop "
                  f"{first_calls:.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    kernel_table(args.rounds)
    print()
    compile_times()


if __name__ == "__main__":
    main()
