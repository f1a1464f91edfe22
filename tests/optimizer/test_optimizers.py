"""Optimizers against updates computed by hand, schedulers, clipping, and state round trips."""
from __future__ import annotations

import contextlib
import math

import numpy as np
import pytest

import plugrad as P
import plugrad.optimizer as optim
from plugrad import Parameter, Tensor
from plugrad.autodiff import GradManager
from plugrad.conformance.spy import without_kernel
from plugrad.core.device import get_device
from plugrad.ops.optim import UPDATE_OPS


@pytest.fixture(autouse=True, params=["in-place kernels", "decompositions"])
def update_path(request):
    """Every test runs twice: with the numpy backend's update kernels, which write into the
    parameter's array, and with the ops' decompositions, which return new arrays (what a backend
    with immutable arrays runs)."""
    if request.param == "in-place kernels":
        yield request.param
        return
    device = get_device("cpu0")
    with contextlib.ExitStack() as stack:
        for op in UPDATE_OPS:
            stack.enter_context(without_kernel(device, op))
        yield request.param


def param(value):
    return P.Parameter(np.array([value], np.float64), dtype="float64")


def run(opt, p, grads):
    values = []
    for g in grads:
        p.grad = P.Tensor(np.array([g]), dtype="float64")
        opt.step().clear_grad()
        values.append(p.numpy()[0])
    return values


def _backward(params, loss_fn):
    gm = GradManager().attach(params)
    with gm:
        gm.backward(loss_fn())


def test_seed_single_step_and_clear_grad():
    """Gradients from GradManager, one step and clear_grad, as the quick-start does them."""
    w, b = Parameter([3.0]), Parameter(-1.0)
    optimizer = optim.SGD([w, b], lr=0.01)
    _backward([w, b], lambda: w * Tensor([2.0]) + b)
    assert optimizer.step() is optimizer
    optimizer.clear_grad()
    assert repr(w) == "Parameter([2.98], device=xpux:0)" and w.grad is None
    assert b.item() == pytest.approx(-1.01)


def test_sgd_momentum_weight_decay_by_hand():
    p = param(1.0)
    got = run(optim.SGD([p], lr=0.1, momentum=0.9, weight_decay=0.01), p, [0.5, 0.5])
    # step 1: d = 0.5 + 0.01 * 1 = 0.51, v = 0.51, p = 1 - 0.051
    # step 2: d = 0.5 + 0.01 * 0.949 = 0.50949, v = 0.9 * 0.51 + 0.50949 = 0.96849
    assert got == pytest.approx([0.949, 0.949 - 0.096849], abs=1e-12)
    p = param(1.0)
    got = run(optim.SGD([p], lr=0.1, momentum=0.9, nesterov=True), p, [0.5])
    assert got == pytest.approx([1 - 0.1 * (0.5 + 0.9 * 0.5)], abs=1e-12)
    p = param(1.0)
    assert run(optim.SGD([p], lr=0.1), p, [0.5, 0.5]) == pytest.approx([0.95, 0.9])


@pytest.mark.parametrize("nesterov", [False, True])
def test_sgd_recurrence_over_steps_with_gradients_from_backward(nesterov):
    """Three steps on a float32 vector whose gradient 2w comes from GradManager, against the
    momentum / Nesterov / weight-decay recurrence in float64."""
    w = Parameter([1.0, -2.0])
    optimizer = optim.SGD([w], lr=0.1, momentum=0.9, nesterov=nesterov, weight_decay=0.01)
    value, buffer = np.array([1.0, -2.0]), None
    for _ in range(3):
        _backward([w], lambda: (w * w).sum())
        optimizer.step().clear_grad()
        grad = 2 * value + 0.01 * value
        buffer = grad if buffer is None else 0.9 * buffer + grad
        update = grad + 0.9 * buffer if nesterov else buffer
        value = value - 0.1 * update
        np.testing.assert_allclose(w.numpy(), value, rtol=1e-6)


def test_param_groups_have_their_own_hyperparameters():
    a, b = Parameter([1.0]), Parameter([1.0])
    optimizer = optim.SGD([{"params": [a]}, {"params": [b], "lr": 1.0}], lr=0.1)
    _backward([a, b], lambda: a + b)
    optimizer.step()
    assert a.item() == pytest.approx(0.9) and b.item() == pytest.approx(0.0)
    with pytest.raises(ValueError, match="more than one parameter group"):
        optimizer.add_param_group({"params": [a]})


def test_adam_first_steps_by_hand():
    p = param(1.0)
    got = run(optim.Adam([p], lr=0.1, betas=(0.9, 0.999), eps=1e-8), p, [0.5, -1.0])
    # step 1: m = 0.05, v = 0.00025; m / 0.1 = 0.5, v / 0.001 = 0.25 -> p = 1 - 0.1 * 0.5 / 0.5
    step1 = 1 - 0.1 * 0.5 / (0.5 + 1e-8)
    # step 2: m = 0.045 - 0.1 = -0.055, v = 0.00024975 + 0.001 = 0.00124975
    m_hat = -0.055 / (1 - 0.9 ** 2)
    v_hat = 0.00124975 / (1 - 0.999 ** 2)
    step2 = step1 - 0.1 * m_hat / (math.sqrt(v_hat) + 1e-8)
    assert got == pytest.approx([step1, step2], abs=1e-12)
    assert step2 == pytest.approx(0.93661, abs=1e-5)


def test_adam_weight_decay_is_l2_and_adamw_decouples_it():
    p = param(2.0)
    run(optim.Adam([p], lr=0.1, weight_decay=0.5), p, [0.0])
    # the gradient becomes 0 + 0.5 * 2 = 1: the first Adam step moves by lr * sign
    assert p.numpy()[0] == pytest.approx(1.9, abs=1e-7)
    p = param(2.0)
    run(optim.AdamW([p], lr=0.1, weight_decay=0.5), p, [1.0])
    # decay first: 2 * (1 - 0.1 * 0.5) = 1.9, then the Adam step of lr * sign(g)
    assert p.numpy()[0] == pytest.approx(1.8, abs=1e-7)
    assert optim.AdamW([param(0.0)], lr=1.0).param_groups[0]["weight_decay"] == 0.01


def test_adagrad_by_hand():
    p = param(1.0)
    got = run(optim.Adagrad([p], lr=0.1, lr_decay=0.5, eps=1e-10), p, [0.5, -1.0])
    step1 = 1 - 0.1 * 0.5 / math.sqrt(0.25 + 1e-10)
    step2 = step1 + (0.1 / 1.5) * 1.0 / math.sqrt(1.25 + 1e-10)
    assert got == pytest.approx([step1, step2], abs=1e-12)


def test_parameters_without_grad_are_skipped_and_grads_are_not_modified():
    a, b = param(1.0), param(1.0)
    opt = optim.SGD([a, b], lr=0.1, momentum=0.9, weight_decay=0.1)
    grad = P.Tensor(np.array([0.5]), dtype="float64")
    a.grad = grad
    opt.step()
    # a: d = 0.5 + 0.1 * 1 = 0.6, a = 1 - 0.06; b has no grad, so neither decay nor momentum
    assert a.numpy()[0] == pytest.approx(0.94, abs=1e-12)
    assert b.numpy()[0] == 1.0 and grad.numpy()[0] == 0.5


def test_invalid_hyper_parameters():
    with pytest.raises(TypeError, match="optimizer can only optimize Parameters, but one of the "
                                        "params is <class 'plugrad.tensor.Tensor'>"):
        optim.SGD([Tensor([1.0])], lr=0.1)
    with pytest.raises(ValueError, match="empty"):
        optim.SGD([], lr=0.1)
    with pytest.raises(ValueError, match="learning rate"):
        optim.SGD([param(0)], lr=-1)
    with pytest.raises(ValueError, match="learning rate"):
        optim.Adam([param(0)], lr=-1)
    with pytest.raises(ValueError, match="betas"):
        optim.Adam([param(0)], lr=0.1, betas=(0.9, 1.0))
    with pytest.raises(ValueError, match="lr_decay"):
        optim.Adagrad([param(0)], lr_decay=-1)


def test_multistep_lr():
    opt = optim.SGD([param(0)], lr=1.0)
    scheduler = optim.MultiStepLR(opt, milestones=[2, 4], gamma=0.5)
    rates = [opt.param_groups[0]["lr"]]
    for _ in range(5):
        scheduler.step()
        rates.append(opt.param_groups[0]["lr"])
    assert rates == [1.0, 1.0, 0.5, 0.5, 0.25, 0.25]
    state = scheduler.state_dict()
    other = optim.MultiStepLR(optim.SGD([param(0)], lr=1.0), milestones=[9])
    other.load_state_dict(state)
    other.step()
    assert other.optimizer.param_groups[0]["lr"] == 0.25 and other.current_epoch == 6
    with pytest.raises(ValueError, match="increasing"):
        optim.MultiStepLR(opt, milestones=[3, 1])


def test_clip_grad_norm_and_value():
    a = P.Parameter(np.zeros(2, np.float64), dtype="float64")
    b = P.Parameter(np.zeros(1, np.float64), dtype="float64")
    a.grad = P.Tensor(np.array([3.0, 4.0]), dtype="float64")
    b.grad = P.Tensor(np.array([12.0]), dtype="float64")
    total = optim.clip_grad_norm([a, b], max_norm=6.5)
    assert total.item() == pytest.approx(13.0)
    scale = 6.5 / (13.0 + 1e-6)
    np.testing.assert_allclose(a.grad.numpy(), [3 * scale, 4 * scale])
    np.testing.assert_allclose(b.grad.numpy(), [12 * scale])
    optim.clip_grad_norm([a, b], max_norm=100.0)  # already small: unchanged
    np.testing.assert_allclose(b.grad.numpy(), [12 * scale])
    optim.clip_grad_value([a, b], -0.5, 2.0)
    np.testing.assert_allclose(a.grad.numpy(), [1.5, 2.0])
    np.testing.assert_allclose(b.grad.numpy(), [2.0])


@pytest.mark.parametrize("make, state_keys", [
    (lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9, weight_decay=1e-3), {"momentum_buffer"}),
    (lambda ps: optim.Adam(ps, lr=0.01), {"step", "exp_avg", "exp_avg_sq"}),
    (lambda ps: optim.AdamW(ps, lr=0.01), {"step", "exp_avg", "exp_avg_sq"}),
    (lambda ps: optim.Adagrad(ps, lr=0.1), {"step", "square_avg"}),
], ids=["SGD", "Adam", "AdamW", "Adagrad"])
def test_state_dict_round_trip_through_save_resumes_exactly(make, state_keys, tmp_path):
    rng = np.random.default_rng(0)
    start = rng.standard_normal((3, 4)).astype(np.float32)
    grads = [rng.standard_normal((3, 4)).astype(np.float32) for _ in range(5)]

    def steps(p, opt, gs):
        for g in gs:
            p.grad = P.Tensor(g)
            opt.step().clear_grad()

    p = P.Parameter(start)
    opt = make([p])
    steps(p, opt, grads)
    p2 = P.Parameter(start)
    opt2 = make([p2])
    steps(p2, opt2, grads[:3])
    state = opt2.state_dict()
    assert state["param_groups"][0]["params"] == [0] and set(state["state"][0]) == state_keys
    P.save({"param": p2, "opt": state}, tmp_path / "ckpt")
    saved = P.load(tmp_path / "ckpt")
    p3 = P.Parameter(saved["param"])
    opt3 = make([p3])
    opt3.param_groups[0]["lr"] = 123.0  # the loaded state, not the constructor, must win
    opt3.load_state_dict(saved["opt"])
    assert opt3.param_groups[0]["lr"] == opt2.param_groups[0]["lr"]
    steps(p3, opt3, grads[3:])
    np.testing.assert_array_equal(p3.numpy(), p.numpy())
    with pytest.raises(ValueError, match="parameter groups"):
        opt3.load_state_dict({"param_groups": [], "state": {}})


@pytest.mark.parametrize("dtype", ["int32", "int64", "float32"])
@pytest.mark.parametrize("make", [
    lambda ps: optim.Adam(ps, lr=0.01),
    lambda ps: optim.Adagrad(ps, lr=0.1, lr_decay=0.5),
], ids=["Adam", "Adagrad"])
def test_a_checkpoint_with_a_0d_step_of_any_dtype_resumes_at_its_step(make, dtype):
    """Checkpoints save the count as a 0-d tensor; loaded in any dtype, it sets the bias
    correction (Adam) or the decayed rate (Adagrad) of the next step, and the count goes on."""
    rng = np.random.default_rng(1)
    start = rng.standard_normal(4).astype(np.float32)
    grads = [rng.standard_normal(4).astype(np.float32) for _ in range(5)]
    p = P.Parameter(start)
    opt = make([p])
    for g in grads[:4]:
        p.grad = P.Tensor(g)
        opt.step()
    saved = opt.state_dict()
    count = saved["state"][0]["step"]
    assert count.shape == () and count.dtype == np.int32 and count.item() == 4

    def resume(step: P.Tensor) -> np.ndarray:
        resumed = P.Parameter(p.numpy())
        again = make([resumed])
        again.load_state_dict({**saved, "state": {0: {**saved["state"][0], "step": step}}})
        resumed.grad = P.Tensor(grads[4])
        again.step()
        assert again.state_dict()["state"][0]["step"].item() == int(step.item()) + 1
        return resumed.numpy()

    as_saved = resume(P.Tensor(np.array(4, dtype)))
    np.testing.assert_array_equal(as_saved, resume(count))
    p.grad = P.Tensor(grads[4])
    opt.step()
    np.testing.assert_array_equal(as_saved, p.numpy())  # as if never interrupted
    assert not np.array_equal(resume(P.Tensor(np.array(1, dtype))), as_saved)


@pytest.mark.parametrize("make", [
    lambda ps: optim.SGD(ps, lr=0.1),
    lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9),
    lambda ps: optim.Adam(ps, lr=0.1),
    lambda ps: optim.AdamW(ps, lr=0.1),
    lambda ps: optim.Adagrad(ps, lr=0.1),
])
def test_step_writes_in_place_or_swaps_in_new_arrays(make, update_path):
    p = param(1.0)
    array = p._data
    p.grad = P.Tensor(np.array([0.5]), dtype="float64")
    grad_array = p.grad._data
    make([p]).step()
    assert p.numpy()[0] < 1.0
    assert (p._data is array) == (update_path == "in-place kernels")
    assert p.grad._data is grad_array and p.grad.numpy()[0] == 0.5
