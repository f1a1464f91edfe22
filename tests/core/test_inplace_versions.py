"""The tape refuses gradients from arrays written in place after they were recorded."""
from __future__ import annotations

import numpy as np
import pytest

import plugrad.functional as F
from plugrad import Parameter, Tensor
from plugrad.autodiff import GradManager
from plugrad.optimizer import SGD, Adam


@pytest.mark.parametrize("make_optimizer", [lambda p: SGD(p, lr=1.0),
                                            lambda p: SGD(p, lr=1.0, momentum=0.9),
                                            lambda p: Adam(p, lr=1.0)])
def test_a_step_between_forward_and_backward_raises_naming_the_op(make_optimizer):
    w = Parameter(3.0)
    gm = GradManager().attach([w])
    opt = make_optimizer([w])
    with gm:
        y = w * w + w  # dy/dw = 2w + 1 = 7 at the recorded w = 3
        w.grad = Tensor(1.0)
        opt.step()  # writes w in place
        with pytest.raises(RuntimeError, match=r"^mul: .*modified in place"):
            gm.backward(y)


def test_a_step_after_backward_leaves_the_gradient_right():
    w = Parameter(3.0)
    gm = GradManager().attach([w])
    opt = SGD([w], lr=1.0)
    with gm:
        gm.backward(w * w + w)
    assert w.grad.item() == 7.0  # 2w + 1 at w = 3, by hand
    opt.step()
    assert w.item() == -4.0
    with gm:  # a fresh recording after the step sees the new value
        gm.backward(w * w + w)
    assert w.grad.item() == 7.0 + (2 * -4.0 + 1)


def test_an_op_that_keeps_no_array_is_not_affected_by_a_write():
    w = Parameter(np.array([1.0, 2.0], "float32"))
    gm = GradManager().attach([w])
    opt = SGD([w], lr=0.5)
    with gm:
        y = F.sum(w * 2.0)  # mul keeps the constant 2.0, sum keeps only the shape ...
        w.grad = Tensor(np.ones(2, "float32"))
        opt.step()  # ... but mul also keeps w: the write must be caught
        with pytest.raises(RuntimeError, match="mul"):
            gm.backward(y)
    with gm:
        y = F.sum(w + 1.0)  # add keeps no input array: its gradient does not read w
        opt.step()  # steps with the earlier gradient of ones
        gm.backward(y)
    np.testing.assert_array_equal(w.grad.numpy(), [2.0, 2.0])  # ones + d(sum(w + 1))/dw
