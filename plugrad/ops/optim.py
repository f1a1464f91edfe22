"""Optimizer updates as ops: what ``optimizer.step()`` computes for each parameter.

Each is an *update op*: its inputs are ``(param, grad, *state)`` and it returns the new
``(param, *state)``, which :func:`plugrad.core.dispatch.update` stores back into those tensors.
A backend whose arrays may be written in place (``DeviceType.inplace``) may write the results
into the input arrays and return them; one with immutable arrays returns new arrays. The
decompositions below use primitives only, so any backend runs every optimizer; a backend may
fuse an update into one kernel.
"""
from __future__ import annotations

import functools
from typing import Any

import numpy as np

from plugrad.core.dispatch import apply, as_tensor_like
from plugrad.core.registry import Spec, composite
from plugrad.core.tensor import Tensor
from plugrad.ops._rules import FIXES, need_kind, need_same_dtype

__all__ = ["UPDATE_OPS", "sgd_reference", "adam_reference", "adagrad_reference"]


def _scaled(x: Tensor, factor: float) -> Tensor:
    return apply("mul", x, as_tensor_like(factor, x))


def _plus_decay(grad: Tensor, param: Tensor, weight_decay: float) -> Tensor:
    """``grad + weight_decay * param`` (an L2 penalty's gradient), or ``grad`` itself."""
    return apply("add", grad, _scaled(param, weight_decay)) if weight_decay else grad


def _sgd_update(param, grad, *buffer, lr, momentum, nesterov, weight_decay):
    step = _plus_decay(grad, param, weight_decay)
    if not buffer:
        return (apply("sub", param, _scaled(step, lr)),)
    velocity = apply("add", _scaled(buffer[0], momentum), step)
    step = apply("add", step, _scaled(velocity, momentum)) if nesterov else velocity
    return apply("sub", param, _scaled(step, lr)), velocity


def _adam_update(param, grad, exp_avg, exp_avg_sq, *, lr, beta1, beta2, eps, weight_decay,
                 decoupled, step):
    if not decoupled:
        grad = _plus_decay(grad, param, weight_decay)
    exp_avg = apply("add", _scaled(exp_avg, beta1), _scaled(grad, 1 - beta1))
    exp_avg_sq = apply("add", _scaled(exp_avg_sq, beta2),
                       _scaled(apply("mul", grad, grad), 1 - beta2))
    denom = apply("add", apply("sqrt", _scaled(exp_avg_sq, 1 / (1 - beta2 ** step))),
                  as_tensor_like(eps, param))
    if weight_decay and decoupled:
        param = _scaled(param, 1 - lr * weight_decay)
    delta = apply("div", _scaled(exp_avg, lr / (1 - beta1 ** step)), denom)
    return apply("sub", param, delta), exp_avg, exp_avg_sq


def _adagrad_update(param, grad, square_avg, *, lr, eps, weight_decay):
    grad = _plus_decay(grad, param, weight_decay)
    square_avg = apply("add", square_avg, apply("mul", grad, grad))
    denom = apply("sqrt", apply("add", square_avg, as_tensor_like(eps, param)))
    return apply("sub", param, apply("div", _scaled(grad, lr), denom)), square_avg


# -- shape and dtype rule, and the float64 references -------------------------------------------
def _update_rule(op: str):
    def rule(param: Any, grad: Any, *state: Any, **attrs: Any) -> tuple[Spec, ...]:
        need_kind(op, "parameter", param, "f", FIXES["f"])
        named = [("the parameter", param), ("the gradient", grad)]
        named += [(f"state {i}", s) for i, s in enumerate(state)]
        need_same_dtype(op, *named)
        for what, t in named[1:]:
            if tuple(t.shape) != tuple(param.shape):
                raise ValueError(f"{op}: {what} has shape {tuple(t.shape)}; expected the "
                                 f"parameter's {tuple(param.shape)}")
        return tuple(Spec(tuple(param.shape), param.dtype) for _ in (param, *state))

    return rule


def _float64(fn):
    """``fn``'s arithmetic in float64, each result in the parameter's dtype."""
    @functools.wraps(fn)  # so the reference shows fn's signature, the declared one
    def reference(param, *arrays, **attrs):
        wide = [np.asarray(a, dtype=np.float64) for a in (param, *arrays)]
        return tuple(np.asarray(out).astype(param.dtype) for out in fn(*wide, **attrs))

    return reference


def sgd_reference(param, grad, *buffer, lr, momentum, nesterov, weight_decay):
    step = grad + weight_decay * param
    if not buffer:
        return (param - lr * step,)
    velocity = momentum * buffer[0] + step
    step = step + momentum * velocity if nesterov else velocity
    return param - lr * step, velocity


def adam_reference(param, grad, exp_avg, exp_avg_sq, *, lr, beta1, beta2, eps, weight_decay,
                   decoupled, step):
    if not decoupled:
        grad = grad + weight_decay * param
    exp_avg = beta1 * exp_avg + (1 - beta1) * grad
    exp_avg_sq = beta2 * exp_avg_sq + (1 - beta2) * grad * grad
    denom = np.sqrt(exp_avg_sq / (1 - beta2 ** step)) + eps
    if decoupled:
        param = param * (1 - lr * weight_decay)
    return param - lr / (1 - beta1 ** step) * exp_avg / denom, exp_avg, exp_avg_sq


def adagrad_reference(param, grad, square_avg, *, lr, eps, weight_decay):
    grad = grad + weight_decay * param
    square_avg = square_avg + grad * grad
    return param - lr * grad / np.sqrt(square_avg + eps), square_avg


composite("sgd_update", "param, grad, *buffer, lr: float, momentum: float, nesterov: bool, "
          "weight_decay: float", rule=_update_rule("sgd_update"),
          reference=_float64(sgd_reference), decomposition=_sgd_update,
          doc="param, grad and an optional momentum buffer of one shape and float dtype; "
              "returns (param,) or (param, buffer), updated: v = momentum * v + (g + "
              "weight_decay * p); p -= lr * v (Nesterov: p -= lr * (g' + momentum * v))")
composite("adam_update", "param, grad, exp_avg, exp_avg_sq, *, lr: float, beta1: float, "
          "beta2: float, eps: float, weight_decay: float, decoupled: bool, step: int",
          rule=_update_rule("adam_update"), reference=_float64(adam_reference),
          decomposition=_adam_update,
          doc="four arrays of one shape and float dtype; returns (param, exp_avg, exp_avg_sq), "
              "updated by Adam at the 1-based `step`; `decoupled` applies weight decay to the "
              "parameter (AdamW), else to the gradient")
composite("adagrad_update", "param, grad, square_avg, *, lr: float, eps: float, "
          "weight_decay: float", rule=_update_rule("adagrad_update"),
          reference=_float64(adagrad_reference), decomposition=_adagrad_update,
          doc="three arrays of one shape and float dtype; returns (param, square_avg), updated: "
              "s += g^2; p -= lr * g / sqrt(s + eps)")

#: The update ops: run through :func:`plugrad.core.dispatch.update`, never recorded on the tape.
UPDATE_OPS = ("sgd_update", "adam_update", "adagrad_update")
