"""Optimizer updates as ops: what ``optimizer.step()`` computes for each parameter.

Each is an *update op*: its inputs are ``(param, grad, *state)`` and it returns the new
``(param, *state)``, which :func:`plugrad.core.dispatch.update` stores back into those tensors.
A backend whose arrays may be written in place (``DeviceType.inplace``) may write the results
into the input arrays and return them; one with immutable arrays returns new arrays. The
decompositions below use primitives only, so any backend runs every optimizer; a backend may
fuse an update into one kernel.
"""
from __future__ import annotations

from plugrad.core.dispatch import apply, as_tensor_like
from plugrad.core.registry import composite
from plugrad.core.tensor import Tensor

__all__ = ["UPDATE_OPS"]


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


composite("sgd_update", decomposition=_sgd_update,
          doc="(param, grad[, buffer]) -> (param[, buffer]): v = momentum * v + (g + "
              "weight_decay * p); p -= lr * v (Nesterov: p -= lr * (g' + momentum * v))")
composite("adam_update", decomposition=_adam_update,
          doc="(param, grad, exp_avg, exp_avg_sq) -> the three updated: Adam at step `step`; "
              "`decoupled` applies weight decay to the parameter (AdamW), else to the gradient")
composite("adagrad_update", decomposition=_adagrad_update,
          doc="(param, grad, square_avg) -> both updated: s += g^2; p -= lr * g / sqrt(s + eps)")

#: The update ops: run through :func:`plugrad.core.dispatch.update`, never recorded on the tape.
UPDATE_OPS = ("sgd_update", "adam_update", "adagrad_update")
