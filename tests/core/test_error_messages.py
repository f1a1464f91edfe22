"""Weak spots of the front end now fail with an error that names the op and the fix."""
from __future__ import annotations

import numpy as np
import pytest

import plugrad.module as M
from plugrad import Parameter, Tensor
from plugrad.autodiff import GradManager
from plugrad.optimizer import SGD, Adam


def test_reshape_refuses_a_fractional_size_instead_of_truncating_it():
    with pytest.raises(TypeError, match=r"^reshape: shape must be .*\(3\.7, 2\)"):
        Tensor(np.zeros(6)).reshape(3.7, 2)
    assert Tensor(np.zeros(6)).reshape(Tensor(3), 2).shape == (3, 2)  # integer tensors are fine


def test_setitem_errors_say_setitem():
    t = Tensor(np.zeros((3, 2), "float32"))
    with pytest.raises(IndexError, match=r"^setitem: .*index 5 is out of bounds"):
        t[5] = 1.0
    with pytest.raises(TypeError, match=r"^setitem: index 'a'"):
        t["a"] = 1.0


@pytest.mark.parametrize("make, match", [
    (lambda p: SGD(p, lr=float("nan")), "SGD: invalid learning rate nan"),
    (lambda p: SGD(p, lr=0.1, momentum=2), r"SGD: invalid momentum 2.*\[0.0, 1.0\)"),
    (lambda p: SGD(p, lr=0.1, weight_decay=float("inf")), "SGD: invalid weight_decay inf"),
    (lambda p: Adam(p, lr=0.1, eps=float("nan")), "Adam: invalid eps nan"),
])
def test_optimizers_refuse_nan_and_out_of_range_hyper_parameters(make, match):
    with pytest.raises(ValueError, match=match):
        make([Parameter(np.ones(2, "float32"))])


def test_attach_of_a_module_says_to_pass_its_parameters():
    with pytest.raises(TypeError, match=r"got Linear; pass module\.parameters\(\)"):
        GradManager().attach(M.Linear(2, 3))


def test_a_second_order_gradient_through_nested_grad_managers_is_refused():
    x = Parameter(np.array([2.0], "float32"))
    outer, inner = GradManager().attach([x]), GradManager().attach([x])
    with outer:
        with inner:
            inner.backward((x ** 3).sum())
        assert x.grad.numpy().tolist() == [12.0]  # 3 x^2 at x = 2: the first order works
        with pytest.raises(ValueError, match="second-order gradients through nested"):
            outer.backward(x.grad.sum())
