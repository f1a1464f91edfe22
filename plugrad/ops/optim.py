"""Optimizer updates as ops: what ``optimizer.step()`` computes for each parameter.

Each is an *update op*: its inputs are ``(param, grad, *state)`` and it returns the new
``(param, *state)``, which :func:`plugrad.core.dispatch.update` stores back into those tensors.
Adam's and Adagrad's last state is their step count, a 0-d int32 tensor the op increments: a
traced step replays the update with the count it reads then, never one frozen into an attribute.
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

__all__ = ["UPDATE_OPS", "COUNT_DTYPE", "sgd_reference", "adam_reference", "adagrad_reference"]


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


def _counted(count: Tensor, like: Tensor) -> tuple[Tensor, Tensor]:
    """The count plus one, and it as a float tensor for the bias corrections: float64 where the
    device has it (the precision of the Python floats eager code used to compute them in)."""
    count = apply("add", count, as_tensor_like(1, count))
    wide = np.dtype("float64")
    return count, apply("cast", count,
                        dtype=wide if wide in like._device.native_dtype else like._dtype)


def _factor(value: Tensor, like: Tensor) -> Tensor:
    """A 0-d factor computed wide, in ``like``'s dtype, as a Python float would be rounded."""
    return apply("cast", value, dtype=like._dtype) if value._dtype != like._dtype else value


def _one_minus_power(base: float, exponent: Tensor) -> Tensor:
    """``1 - base ** exponent``, computed in ``exponent``'s dtype."""
    power = apply("pow", as_tensor_like(base, exponent), exponent)
    return apply("sub", as_tensor_like(1.0, exponent), power)


def _adam_update(param, grad, exp_avg, exp_avg_sq, count, *, lr, beta1, beta2, eps,
                 weight_decay, decoupled):
    count, step = _counted(count, param)
    if not decoupled:
        grad = _plus_decay(grad, param, weight_decay)
    exp_avg = apply("add", _scaled(exp_avg, beta1), _scaled(grad, 1 - beta1))
    exp_avg_sq = apply("add", _scaled(exp_avg_sq, beta2),
                       _scaled(apply("mul", grad, grad), 1 - beta2))
    correction = apply("div", as_tensor_like(1.0, step), _one_minus_power(beta2, step))
    denom = apply("add", apply("sqrt", apply("mul", exp_avg_sq, _factor(correction, param))),
                  as_tensor_like(eps, param))
    if weight_decay and decoupled:
        param = _scaled(param, 1 - lr * weight_decay)
    rate = apply("div", as_tensor_like(lr, step), _one_minus_power(beta1, step))
    delta = apply("div", apply("mul", exp_avg, _factor(rate, param)), denom)
    return apply("sub", param, delta), exp_avg, exp_avg_sq, count


def _adagrad_update(param, grad, square_avg, count, *, lr, lr_decay, eps, weight_decay):
    count, step = _counted(count, param)
    if lr_decay:  # lr / (1 + (t - 1) * lr_decay)
        decayed = apply("mul", apply("sub", step, as_tensor_like(1.0, step)),
                        as_tensor_like(lr_decay, step))
        lr = _factor(apply("div", as_tensor_like(lr, step),
                           apply("add", as_tensor_like(1.0, step), decayed)), param)
    grad = _plus_decay(grad, param, weight_decay)
    square_avg = apply("add", square_avg, apply("mul", grad, grad))
    denom = apply("sqrt", apply("add", square_avg, as_tensor_like(eps, param)))
    return apply("sub", param, apply("div", _scaled(grad, lr), denom)), square_avg, count


# -- shape and dtype rule, and the float64 references -------------------------------------------
#: The dtype of the step counts Adam and Adagrad keep (a saved state dict's 0-d ``step``).
COUNT_DTYPE = np.dtype("int32")


def _update_rule(op: str, counted: bool = False):
    def rule(param: Any, grad: Any, *inputs: Any, **attrs: Any) -> tuple[Spec, ...]:
        need_kind(op, "parameter", param, "f", FIXES["f"])
        state = list(inputs)
        count: tuple[Spec, ...] = ()
        if counted:
            *state, step = inputs
            if tuple(step.shape) != () or step.dtype != COUNT_DTYPE:
                raise TypeError(f"{op}: the step count must be a 0-d int32 tensor; got shape "
                                f"{tuple(step.shape)} {step.dtype}; keep it as the optimizer "
                                f"creates it (a state dict's 'step')")
            count = (Spec((), COUNT_DTYPE),)
        named = [("the parameter", param), ("the gradient", grad)]
        named += [(f"state {i}", s) for i, s in enumerate(state)]
        need_same_dtype(op, *named)
        for what, t in named[1:]:
            if tuple(t.shape) != tuple(param.shape):
                raise ValueError(f"{op}: {what} has shape {tuple(t.shape)}; expected the "
                                 f"parameter's {tuple(param.shape)}")
        return tuple(Spec(tuple(param.shape), param.dtype) for _ in (param, *state)) + count

    return rule


def _float64(fn):
    """``fn``'s arithmetic in float64, each result in its input's dtype (a step count's too)."""
    @functools.wraps(fn)  # so the reference shows fn's signature, the declared one
    def reference(param, grad, *state, **attrs):
        wide = [np.asarray(a, dtype=np.float64) for a in (param, grad, *state)]
        return tuple(np.asarray(out).astype(np.asarray(like).dtype)
                     for out, like in zip(fn(*wide, **attrs), (param, *state)))

    return reference


def sgd_reference(param, grad, *buffer, lr, momentum, nesterov, weight_decay):
    step = grad + weight_decay * param
    if not buffer:
        return (param - lr * step,)
    velocity = momentum * buffer[0] + step
    step = step + momentum * velocity if nesterov else velocity
    return param - lr * step, velocity


def adam_reference(param, grad, exp_avg, exp_avg_sq, count, *, lr, beta1, beta2, eps,
                   weight_decay, decoupled):
    step = count + 1
    if not decoupled:
        grad = grad + weight_decay * param
    exp_avg = beta1 * exp_avg + (1 - beta1) * grad
    exp_avg_sq = beta2 * exp_avg_sq + (1 - beta2) * grad * grad
    denom = np.sqrt(exp_avg_sq / (1 - beta2 ** step)) + eps
    if decoupled:
        param = param * (1 - lr * weight_decay)
    return param - lr / (1 - beta1 ** step) * exp_avg / denom, exp_avg, exp_avg_sq, step


def adagrad_reference(param, grad, square_avg, count, *, lr, lr_decay, eps, weight_decay):
    step = count + 1
    lr = lr / (1 + (step - 1) * lr_decay)
    grad = grad + weight_decay * param
    square_avg = square_avg + grad * grad
    return param - lr * grad / np.sqrt(square_avg + eps), square_avg, step


composite("sgd_update", "param, grad, *buffer, lr: float, momentum: float, nesterov: bool, "
          "weight_decay: float", rule=_update_rule("sgd_update"),
          reference=_float64(sgd_reference), decomposition=_sgd_update,
          doc="param, grad and an optional momentum buffer of one shape and float dtype; "
              "returns (param,) or (param, buffer), updated: v = momentum * v + (g + "
              "weight_decay * p); p -= lr * v (Nesterov: p -= lr * (g' + momentum * v))")
composite("adam_update", "param, grad, exp_avg, exp_avg_sq, count, *, lr: float, "
          "beta1: float, beta2: float, eps: float, weight_decay: float, decoupled: bool",
          rule=_update_rule("adam_update", counted=True), reference=_float64(adam_reference),
          decomposition=_adam_update,
          doc="four arrays of one shape and float dtype and a 0-d int32 count of the steps "
              "taken; returns (param, exp_avg, exp_avg_sq, count + 1), updated by Adam at step "
              "t = count + 1; `decoupled` applies weight decay to the parameter (AdamW), else "
              "to the gradient")
composite("adagrad_update", "param, grad, square_avg, count, *, lr: float, lr_decay: float, "
          "eps: float, weight_decay: float", rule=_update_rule("adagrad_update", counted=True),
          reference=_float64(adagrad_reference), decomposition=_adagrad_update,
          doc="three arrays of one shape and float dtype and a 0-d int32 count of the steps "
              "taken; returns (param, square_avg, count + 1), updated at t = count + 1: "
              "s += g^2; p -= lr / (1 + (t - 1) * lr_decay) * g / sqrt(s + eps)")

#: The update ops: run through :func:`plugrad.core.dispatch.update`, never recorded on the tape.
UPDATE_OPS = ("sgd_update", "adam_update", "adagrad_update")
