"""Run under ``mpiexec -n 2``: a data-parallel LeNet step, eager and traced, on each rank.

Rank 0 writes the two runs' losses and final parameters to OUT.npz; the traced step must
all-reduce its gradients in every replay, as the eager one does.
"""
from __future__ import annotations

import sys

import numpy as np

import plugrad
import plugrad.distributed as dist
import plugrad.functional as F
import plugrad.optimizer as optim
from plugrad.autodiff import GradManager
from plugrad.jit import trace
from plugrad.nn import LeNet

STEPS, BATCH = 6, 8


def run(traced: bool) -> tuple[list[float], list[np.ndarray]]:
    plugrad.random.seed(0)
    model = LeNet()
    gm = GradManager().attach(model.parameters(), callbacks=[dist.make_allreduce_cb("mean")])
    opt = optim.SGD(model.parameters(), lr=0.05, momentum=0.9)

    def step(x, y):
        with gm:
            loss = F.nn.cross_entropy(model(x), y)
            gm.backward(loss)
            opt.step().clear_grad()
        return loss

    step = trace(step, symbolic=True) if traced else step
    rng = np.random.default_rng(dist.get_rank())  # each rank its own data
    losses = []
    for _ in range(STEPS):
        x = rng.standard_normal((BATCH, 1, 32, 32)).astype(np.float32)
        y = rng.integers(0, 10, BATCH).astype(np.int32)
        losses.append(float(step(plugrad.Tensor(x), plugrad.Tensor(y)).item()))
    return losses, [p.numpy() for p in model.parameters()]


def main(out: str) -> None:
    (eager_losses, eager_params), (traced_losses, traced_params) = run(False), run(True)
    if dist.get_rank() == 0:
        np.savez(out, world=dist.get_world_size(), eager=np.array(eager_losses),
                 traced=np.array(traced_losses), eager_w=eager_params[0],
                 traced_w=traced_params[0], same=all(
                     a.tobytes() == b.tobytes() for a, b in zip(eager_params, traced_params)))


if __name__ == "__main__":
    main(sys.argv[1])
