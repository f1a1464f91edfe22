"""Optimizer base and SGD against hand-computed updates."""
from __future__ import annotations

import numpy as np
import pytest

import plugrad.optimizer as optim
from plugrad import Parameter, Tensor
from plugrad.autodiff import GradManager


def _grad(params, loss_fn):
    gm = GradManager().attach(params)
    with gm:
        gm.backward(loss_fn())


def test_seed_single_step_and_clear_grad():
    w, b = Parameter([3.0]), Parameter(-1.0)
    optimizer = optim.SGD([w, b], lr=0.01)
    _grad([w, b], lambda: w * Tensor([2.0]) + b)
    assert optimizer.step() is optimizer
    optimizer.clear_grad()
    assert repr(w) == "Parameter([2.98], device=xpux:0)" and w.grad is None
    assert b.item() == pytest.approx(-1.01)


def test_non_parameters_are_refused_as_in_megengine():
    with pytest.raises(TypeError, match="optimizer can only optimize Parameters, but one of the "
                                        "params is <class 'plugrad.tensor.Tensor'>"):
        optim.SGD([Tensor([1.0])], lr=0.1)
    with pytest.raises(ValueError, match="empty"):
        optim.SGD([], lr=0.1)
    with pytest.raises(ValueError, match="learning rate"):
        optim.SGD([Parameter(1.0)], lr=-1)


@pytest.mark.parametrize("nesterov", [False, True])
def test_momentum_weight_decay_and_nesterov_by_hand(nesterov):
    w = Parameter([1.0, -2.0])
    optimizer = optim.SGD([w], lr=0.1, momentum=0.9, nesterov=nesterov, weight_decay=0.01)
    value, buffer = np.array([1.0, -2.0]), None
    for step in range(3):
        _grad([w], lambda: (w * w).sum())  # gradient 2w
        optimizer.step().clear_grad()
        grad = 2 * value + 0.01 * value
        buffer = grad if buffer is None else 0.9 * buffer + grad
        update = grad + 0.9 * buffer if nesterov else buffer
        value = value - 0.1 * update
        np.testing.assert_allclose(w.numpy(), value, rtol=1e-6)


def test_parameters_are_updated_in_place_and_untouched_without_grad():
    w, frozen = Parameter([1.0]), Parameter([5.0])
    optimizer = optim.SGD([w, frozen], lr=0.5)
    _grad([w], lambda: w * 2)
    optimizer.step()
    assert w.tolist() == [0.0] and frozen.tolist() == [5.0]


def test_param_groups_have_their_own_hyperparameters():
    a, b = Parameter([1.0]), Parameter([1.0])
    optimizer = optim.SGD([{"params": [a]}, {"params": [b], "lr": 1.0}], lr=0.1)
    _grad([a, b], lambda: a + b)
    optimizer.step()
    assert a.item() == pytest.approx(0.9) and b.item() == pytest.approx(0.0)
    with pytest.raises(ValueError, match="more than one parameter group"):
        optimizer.add_param_group({"params": [a]})


def test_state_dict_round_trip_restores_momentum():
    def run(optimizer, w, steps):
        for _ in range(steps):
            _grad([w], lambda: (w * w).sum())
            optimizer.step().clear_grad()

    w1 = Parameter([1.0, 2.0])
    first = optim.SGD([w1], lr=0.1, momentum=0.9)
    run(first, w1, 2)
    state = first.state_dict()
    assert state["param_groups"][0]["params"] == [0]
    assert set(state["state"][0]) == {"momentum_buffer"}
    w2 = Parameter(w1.numpy())
    second = optim.SGD([w2], lr=0.5, momentum=0.0)
    second.load_state_dict(state)
    assert second.param_groups[0]["lr"] == 0.1 and second.param_groups[0]["momentum"] == 0.9
    run(first, w1, 2)
    run(second, w2, 2)
    np.testing.assert_array_equal(w1.numpy(), w2.numpy())
    with pytest.raises(ValueError, match="parameter groups"):
        second.load_state_dict({"param_groups": [], "state": {}})
