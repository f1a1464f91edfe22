"""One LeNet training step (batch 64, SGD(lr=0.01, momentum=0.9, weight_decay=5e-4),
cross-entropy), built four ways for the benchmarks: plugrad eager, plugrad traced (jit.trace
replay), the numpy kernels called directly (no framework: what plugrad's overhead is measured
against), and PyTorch CPU. All four start from the same weights and see the same batch.
"""
from __future__ import annotations

import os
import sys
from typing import Any, Callable

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import plugrad as P  # noqa: E402
import plugrad.module as M  # noqa: E402
import plugrad.optimizer as optim  # noqa: E402
from plugrad.autodiff import GradManager  # noqa: E402
from plugrad.cli.train import training_step  # noqa: E402

LR, MOMENTUM, WEIGHT_DECAY = 0.01, 0.9, 5e-4


def make_batch(batch: int = 64, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A fixed MNIST-shaped batch: (N, 1, 32, 32) float32 images and int32 labels."""
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((batch, 1, 32, 32)).astype(np.float32),
            rng.integers(0, 10, batch).astype(np.int32))


def initial_state(seed: int = 0) -> dict[str, np.ndarray]:
    P.random.seed(seed)
    return M.LeNet().state_dict()


def sgd_parts(model: Any, state: dict, images: np.ndarray, labels: np.ndarray) -> tuple:
    """(model, GradManager, SGD, x, y) of a step from ``state``, for steps built elsewhere."""
    model.load_state_dict(state)
    gm = GradManager().attach(model.parameters())
    opt = optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY)
    return model, gm, opt, P.Tensor(images), P.Tensor(labels)


def plugrad_parts(state: dict, images: np.ndarray, labels: np.ndarray) -> tuple:
    """(model, GradManager, SGD, x, y) of the quick-start's step."""
    return sgd_parts(M.LeNet(), state, images, labels)


#: The quick-start's step on a batch (forward, cross_entropy, backward, SGD step): the very
#: function ``plugrad train`` runs.
train_step = training_step


def plugrad_step(state: dict, images: np.ndarray, labels: np.ndarray) -> Callable[[], float]:
    """The quick-start's step: GradManager, model, cross_entropy, backward, SGD step."""
    model, gm, opt, x, y = plugrad_parts(state, images, labels)
    step = train_step(model, gm, opt)
    return lambda: step(x, y)


def traced_step(state: dict, images: np.ndarray, labels: np.ndarray) -> Callable[[], float]:
    """The quick-start's step under plugrad.jit.trace: recorded once, then its kernels replayed."""
    from plugrad.jit import trace

    model, gm, opt, x, y = plugrad_parts(state, images, labels)
    traced = trace(symbolic=True)(train_step(model, gm, opt))

    def step() -> float:
        return traced(x, y)

    step.trace, step.inputs = traced, (x, y)  # for the benchmarks that look inside
    return step


def kernels_step(state: dict, images: np.ndarray, labels: np.ndarray,
                 table: dict | None = None) -> Callable[[], float]:
    """The same step with the numpy backend's kernels called by hand: no Tensors, no tape.
    The SGD update is the backend's ``sgd_update`` kernel too, so that only the framework's
    own work tells the two steps apart.

    ``table`` defaults to the one the backend runs (its batch split over threads and its BLAS
    thread limit included)."""
    from plugrad.core import registry

    k = table if table is not None else registry.dispatch_table(P.Tensor(0.0).device.type)
    params = {name: value.copy() for name, value in state.items()}
    buffers = {name: np.zeros_like(value) for name, value in state.items()}
    conv = dict(stride=(1, 1), padding=(0, 0), dilation=(1, 1), groups=1)
    pool = dict(kernel_size=(2, 2), stride=(2, 2), padding=(0, 0))

    def step() -> float:
        p, grads = params, {}
        a1 = k["relu"](k["conv2d_bias"](images, p["conv1.weight"], p["conv1.bias"], **conv))
        p1 = k["max_pool2d"](a1, **pool)
        a2 = k["relu"](k["conv2d_bias"](p1, p["conv2.weight"], p["conv2.bias"], **conv))
        p2 = k["max_pool2d"](a2, **pool)
        flat = p2.reshape(len(images), -1)
        h1 = k["relu"](k["linear"](flat, p["fc1.weight"], p["fc1.bias"]))
        h2 = k["relu"](k["linear"](h1, p["fc2.weight"], p["fc2.bias"]))
        logits = k["linear"](h2, p["classifier.weight"], p["classifier.bias"])
        loss = k["softmax_cross_entropy"](logits, labels, axis=1).mean()
        g = k["softmax_cross_entropy_grad"](np.full(len(labels), 1 / len(labels), np.float32),
                                            logits, labels, axis=1)
        for name, inp, out in (("classifier", h2, None), ("fc2", h1, h2), ("fc1", flat, h1)):
            if out is not None:
                g = k["relu_grad"](g, out)
            grads[f"{name}.weight"] = k["matmul"](g.T, inp)
            grads[f"{name}.bias"] = k["sum"](g, axis=(0,), keepdims=False)
            g = k["matmul"](g, p[f"{name}.weight"])
        g = k["max_pool2d_grad"](g.reshape(p2.shape), a2, p2, **pool)
        g = k["relu_grad"](g, a2)
        grads["conv2.bias"] = k["sum"](g, axis=(0, 2, 3), keepdims=True)
        grads["conv2.weight"] = k["conv2d_grad_weight"](g, p1, weight_shape=p["conv2.weight"]
                                                        .shape, **conv)
        g = k["conv2d_grad_input"](g, p["conv2.weight"], input_shape=p1.shape, **conv)
        g = k["relu_grad"](k["max_pool2d_grad"](g, a1, p1, **pool), a1)
        grads["conv1.bias"] = k["sum"](g, axis=(0, 2, 3), keepdims=True)
        grads["conv1.weight"] = k["conv2d_grad_weight"](g, images, weight_shape=p[
            "conv1.weight"].shape, **conv)
        for name, value in p.items():
            k["sgd_update"](value, grads[name], buffers[name], lr=LR, momentum=MOMENTUM,
                            nesterov=False, weight_decay=WEIGHT_DECAY)
        return loss

    return step


def torch_step(state: dict, images: np.ndarray, labels: np.ndarray) -> Callable[[], float]:
    """The same model in PyTorch (imported here only: never a plugrad dependency)."""
    import torch
    import torch.nn as nn
    import torch.nn.functional as TF

    class TorchLeNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv1, self.conv2 = nn.Conv2d(1, 6, 5), nn.Conv2d(6, 16, 5)
            self.fc1, self.fc2 = nn.Linear(400, 120), nn.Linear(120, 84)
            self.classifier = nn.Linear(84, 10)

        def forward(self, x):
            x = TF.max_pool2d(TF.relu(self.conv1(x)), 2, 2)
            x = TF.max_pool2d(TF.relu(self.conv2(x)), 2, 2)
            x = torch.flatten(x, 1)
            return self.classifier(TF.relu(self.fc2(TF.relu(self.fc1(x)))))

    model = TorchLeNet()
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            tensor.copy_(torch.from_numpy(state[name].reshape(tensor.shape)))
    opt = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM,
                          weight_decay=WEIGHT_DECAY)
    x, y = torch.from_numpy(images), torch.from_numpy(labels.astype(np.int64))

    def step() -> float:
        opt.zero_grad()
        loss = TF.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        return loss.detach()

    return step
