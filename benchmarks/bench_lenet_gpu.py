"""LeNet training step on the GPU: plugrad's cupy backend against PyTorch CUDA, in one run.

    python benchmarks/bench_lenet_gpu.py                   # batch 64 and 256
    python benchmarks/bench_lenet_gpu.py --batch 128 --steps 200 --no-torch

One step is the quick-start tutorial's: LeNet forward, ``F.nn.cross_entropy``, backward through
a GradManager, ``SGD(lr=0.01, momentum=0.9, weight_decay=5e-4)``. Both frameworks start from the
same weights and train on the same batch, kept on the GPU, so the timing is the step and not
the data pipeline; each timed run ends with a device synchronisation (GPU work is queued
asynchronously), and the two frameworks' runs alternate (benchmarks/timing.py). The target is
a step time of at most 1.5x PyTorch's.

Needs a CUDA GPU, CuPy (``pip install plugrad[cuda]``) and, for the comparison, PyTorch with
CUDA. Exits with status 1 when plugrad has no usable gpu device.
"""
from __future__ import annotations

import argparse
import statistics
import sys
from typing import Callable

import numpy as np
from timing import import_torch, time_rounds

import plugrad
import plugrad.functional as F
from plugrad.autodiff import GradManager

TARGET_RATIO = 1.5


def make_lenet():
    """The quick-start tutorial's LeNet (plugrad.nn.LeNet is that architecture)."""
    from plugrad.nn import LeNet

    return LeNet()


def plugrad_step(state: dict, data: np.ndarray, label: np.ndarray, device: str):
    """A zero-argument training step on ``device`` and a synchronisation function."""
    import plugrad.optimizer as optim

    with plugrad.using_device(device):
        model = make_lenet()
        model.load_state_dict(state)
        x, y = plugrad.Tensor(data), plugrad.Tensor(label)
    gm = GradManager().attach(model.parameters())
    opt = optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    target = x.device

    def step():
        with gm:
            loss = F.nn.cross_entropy(model(x), y)
            gm.backward(loss)
            opt.step().clear_grad()
        return loss

    return step, lambda: target.type.synchronize(target.index)


def torch_step(state: dict, data: np.ndarray, label: np.ndarray):
    """The same step in PyTorch on CUDA, from the same weights; None without torch.cuda."""
    torch = import_torch()
    if torch is None or not torch.cuda.is_available():
        return None
    nn, tf = torch.nn, torch.nn.functional

    class LeNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(1, 6, 5)
            self.conv2 = nn.Conv2d(6, 16, 5)
            self.fc1 = nn.Linear(16 * 5 * 5, 120)
            self.fc2 = nn.Linear(120, 84)
            self.classifier = nn.Linear(84, 10)

        def forward(self, x):
            x = tf.max_pool2d(tf.relu(self.conv1(x)), 2, 2)
            x = tf.max_pool2d(tf.relu(self.conv2(x)), 2, 2)
            x = torch.flatten(x, 1)
            x = tf.relu(self.fc1(x))
            x = tf.relu(self.fc2(x))
            return self.classifier(x)

    device = torch.device("cuda", 0)
    model = LeNet().to(device)
    with torch.no_grad():
        for name, param in model.named_parameters():
            # MegEngine keeps conv biases as (1, C, 1, 1): same values, another shape.
            param.copy_(torch.from_numpy(np.asarray(state[name]).reshape(param.shape)))
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    x = torch.from_numpy(data).to(device)
    y = torch.from_numpy(label.astype(np.int64)).to(device)

    def step():
        opt.zero_grad(set_to_none=True)
        loss = tf.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        return loss

    return step, torch.cuda.synchronize


def time_steps(sides: dict[str, tuple[Callable, Callable[[], None]]], steps: int, repeats: int,
               warmup: int) -> dict[str, float]:
    """Median seconds per step of each side over ``repeats`` runs of ``steps`` steps, the sides'
    runs interleaved; each run ends with the device's synchronisation (GPU work is queued)."""
    def run(step: Callable, sync: Callable[[], None]) -> Callable[[], None]:
        def steps_then_sync() -> None:
            for _ in range(steps):
                step()
            sync()
        return steps_then_sync

    for step, sync in sides.values():  # kernel compilation, allocator pools, cuBLAS handles
        for _ in range(warmup):
            step()
        sync()
    runs = time_rounds({name: run(*side) for name, side in sides.items()}, repeats, warmup=0,
                       per_round=1, settle=0)
    return {name: statistics.median(times) / steps for name, times in runs.items()}


def first_losses(step: Callable, count: int = 3) -> list[float]:
    return [float(step().item()) for _ in range(count)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, nargs="+", default=[64, 256])
    parser.add_argument("--steps", type=int, default=100, help="steps per timed run")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs (median reported)")
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--device", default="gpu0", help="plugrad device (default gpu0)")
    parser.add_argument("--no-torch", action="store_true", help="time plugrad only")
    args = parser.parse_args(argv)

    from plugrad.core import device as devices

    try:
        device = devices.get_device(args.device)
    except (RuntimeError, ValueError) as exc:
        print(f"bench_lenet_gpu: no usable device {args.device!r}: {exc}", file=sys.stderr)
        return 1
    if device.type.name != "gpu":
        print(f"bench_lenet_gpu: {args.device!r} resolves to {device.physical}, not a GPU",
              file=sys.stderr)
        return 1

    plugrad.random.seed(0)
    with plugrad.using_device("cpu0"):
        state = make_lenet().state_dict()
    print(f"LeNet training step, SGD(momentum=0.9, weight_decay=5e-4); plugrad on "
          f"{device.physical} (backend {device.backend!r}); median of {args.repeats} x "
          f"{args.steps} steps")
    header = f"{'batch':>6} {'plugrad ms':>11} {'torch ms':>9} {'ratio':>6}  losses agree"
    print(header)
    worst = 0.0
    for batch in args.batch:
        rng = np.random.default_rng(batch)
        data = rng.standard_normal((batch, 1, 32, 32)).astype(np.float32)
        label = rng.integers(0, 10, batch).astype(np.int32)
        ours = plugrad_step(state, data, label, args.device)
        theirs = None if args.no_torch else torch_step(state, data, label)
        agree = "-"
        if theirs is not None:
            # Fresh copies, so the timed steps start from the same weights as well.
            a = first_losses(plugrad_step(state, data, label, args.device)[0])
            b = first_losses(torch_step(state, data, label)[0])
            agree = "yes" if np.allclose(a, b, rtol=1e-3) else f"NO {a} vs {b}"
        sides = {"plugrad": ours} if theirs is None else {"plugrad": ours, "torch": theirs}
        seconds = time_steps(sides, args.steps, args.repeats, args.warmup)
        t_ours = seconds["plugrad"]
        line = f"{batch:>6} {t_ours * 1e3:>11.3f}"
        if theirs is None:
            line += f" {'-':>9} {'-':>6}"
        else:
            t_theirs = seconds["torch"]
            ratio = t_ours / t_theirs
            worst = max(worst, ratio)
            line += f" {t_theirs * 1e3:>9.3f} {ratio:>6.2f}"
        print(f"{line}  {agree}")
    if args.no_torch:
        return 0
    if worst == 0.0:
        print("PyTorch with CUDA is not available: no comparison (pip install torch)")
        return 0
    verdict = "within" if worst <= TARGET_RATIO else "OVER"
    print(f"worst ratio {worst:.2f}x: {verdict} the {TARGET_RATIO}x target")
    return 0


if __name__ == "__main__":
    sys.exit(main())
