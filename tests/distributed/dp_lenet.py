"""LeNet on MNIST for 20 steps, data-parallel or not: the program the equivalence tests run.

    python dp_lenet.py MNIST_DIR OUT.npz               one process, batch 64
    mpiexec -n 2 python dp_lenet.py MNIST_DIR OUT.npz  two ranks, batch 32 each
    python dp_lenet.py MNIST_DIR OUT.npz --launcher    two ranks through dist.launcher

Every rank starts from the same weights (rank 1's are scrambled, then bcast_list_ must fix
them), sees its half of each 64-sample batch (the sampler's default split), and rank 0 writes
the per-step losses (averaged over the ranks) and the final parameters.
"""
from __future__ import annotations

import sys

import numpy as np

import plugrad
import plugrad.distributed as dist
import plugrad.functional as F
import plugrad.optimizer as optim
from plugrad.autodiff import GradManager
from plugrad.data import DataLoader, SequentialSampler
from plugrad.data.dataset import MNIST
from plugrad.nn import LeNet

STEPS, GLOBAL_BATCH = 20, 64


def train(mnist_dir: str) -> tuple[list[float], dict[str, np.ndarray]]:
    plugrad.random.seed(0)
    model = LeNet()
    world = dist.get_world_size()
    callbacks = []
    if dist.is_distributed():
        if dist.get_rank() == 1:  # a different start that bcast_list_ must overwrite
            for p in model.parameters():
                p._set_data(np.zeros(p.shape, dtype="float32"))
        dist.bcast_list_(model.parameters())
        callbacks = [dist.make_allreduce_cb("mean")]
    gm = GradManager().attach(model.parameters(), callbacks=callbacks)
    opt = optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    data = MNIST(mnist_dir, train=True)
    images, labels = data.arrays
    subset = plugrad.data.dataset.ArrayDataset(
        (images[:STEPS * GLOBAL_BATCH].astype("float32").transpose(0, 3, 1, 2) / 255.0 - 0.13)
        / 0.31, labels[:STEPS * GLOBAL_BATCH])
    # No world_size/rank given: the sampler splits by the process group when there is one.
    loader = DataLoader(subset, SequentialSampler(subset, batch_size=GLOBAL_BATCH // world))
    losses = []
    for x, y in loader:
        x = plugrad.Tensor(np.pad(x, ((0, 0), (0, 0), (2, 2), (2, 2))))
        with gm:
            loss = F.nn.cross_entropy(model(x), plugrad.Tensor(y))
            gm.backward(loss)
        opt.step().clear_grad()
        if dist.is_distributed():
            loss = dist.functional.all_reduce_sum(loss) / world
        losses.append(float(loss.item()))
    return losses, {name: p.numpy() for name, p in model.named_parameters()}


def main(argv: list[str]) -> None:
    mnist_dir, out = argv[:2]
    if "--launcher" in argv:
        results = dist.launcher(train, n_gpus=2)(mnist_dir)
        (losses, params), world = results[0], len(results)
        assert results[1][0] == losses
    else:
        losses, params = train(mnist_dir)
        world = dist.get_world_size()
        if dist.get_rank() != 0:
            return
    np.savez(out, world=world, losses=np.array(losses), **params)


if __name__ == "__main__":
    main(sys.argv[1:])
