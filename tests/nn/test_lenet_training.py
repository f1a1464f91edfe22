"""The quick-start's training loop end to end, with fused kernels and on a primitives-only
backend (every composite kernel removed, so each op runs its decomposition)."""
import numpy as np
import pytest

import plugrad as P
import plugrad.functional as F
import plugrad.module as M
import plugrad.optimizer as optim
from plugrad.autodiff import GradManager
from plugrad.core.registry import OPS


@pytest.fixture
def primitives_only():
    """Hide the numpy backend's fused kernels for the duration of a test."""
    table = P.Tensor(0.0).device.kernels
    hidden = {name: table.pop(name) for name in list(table) if not OPS[name].primitive}
    assert "conv2d" in hidden and "softmax_cross_entropy" in hidden
    try:
        yield
    finally:
        table.update(hidden)


def _batch(n=16, seed=0):
    """Two classes a LeNet separates quickly: a bright top half or a bright bottom half."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n).astype(np.int32)
    images = rng.normal(0, 0.3, (n, 1, 32, 32)).astype(np.float32)
    for i, label in enumerate(labels):
        rows = slice(0, 16) if label == 0 else slice(16, 32)
        images[i, 0, rows] += 1.0
    return images, labels


def _train(model, steps, images, labels):
    gm = GradManager().attach(model.parameters())
    opt = optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    losses = []
    model.train()
    for _ in range(steps):
        with gm:
            loss = F.nn.cross_entropy(model(P.Tensor(images)), P.Tensor(labels))
            gm.backward(loss)
            opt.step().clear_grad()
        losses.append(loss.item())
    return losses


def test_quick_start_loop_learns():
    P.random.seed(0)
    model = M.LeNet()
    images, labels = _batch(32)
    losses = _train(model, 40, images, labels)
    assert losses[-1] < 0.2 * losses[0]
    model.eval()
    test_images, test_labels = _batch(64, seed=1)
    pred = F.argmax(model(P.Tensor(test_images)), axis=1)
    accuracy = (pred == P.Tensor(test_labels)).sum().item() / 64
    assert accuracy > 0.95


def test_primitives_only_backend_trains_lenet_like_the_fused_one(primitives_only):
    P.random.seed(3)
    state = M.LeNet().state_dict()
    images, labels = _batch(8)
    decomposed_model = M.LeNet()
    decomposed_model.load_state_dict(state)
    decomposed_losses = _train(decomposed_model, 3, images, labels)
    decomposed_state = decomposed_model.state_dict()
    table = P.Tensor(0.0).device.kernels
    assert "conv2d" not in table  # really running decompositions
    fused_state, fused_losses = _fused_run(state, images, labels)
    np.testing.assert_allclose(decomposed_losses, fused_losses, rtol=1e-5)
    for key in state:
        np.testing.assert_allclose(decomposed_state[key], fused_state[key], rtol=1e-4,
                                   atol=1e-6, err_msg=key)


def _fused_run(state, images, labels):
    """The same three steps with the fused kernels restored for the duration."""
    from plugrad.backends.numpy_backend.kernels import kernel_table

    table = P.Tensor(0.0).device.kernels
    fused = {name: kernel for name, kernel in kernel_table(np).items()
             if name in OPS and not OPS[name].primitive}
    table.update(fused)
    try:
        model = M.LeNet()
        model.load_state_dict(state)
        losses = _train(model, 3, images, labels)
        return model.state_dict(), losses
    finally:
        for name in fused:
            table.pop(name)
