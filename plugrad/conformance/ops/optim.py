"""Records and kernel contracts of the optimizer update ops (``sgd_update``, ``adam_update``,
``adagrad_update``).

An update kernel returns the new parameter and state arrays; a backend whose arrays may be
written in place may return its inputs written, any other returns new arrays. Each record runs
the op through :func:`plugrad.core.dispatch.update` and returns every updated tensor followed by
the gradient, flattened into one vector: the values stored into the tensors are checked against
a float64 reference, and the gradient must come back unchanged.
"""
from __future__ import annotations

import numpy as np

from plugrad import functional as F
from plugrad.conformance import samples as S
from plugrad.conformance.contract import kernel
from plugrad.conformance.table import Arg, OpRecord, Sample, register
from plugrad.core.dispatch import update

_FLOATS = ("float16", "float32", "float64")


# -- float64 arithmetic shared by the contracts and the records ---------------------------------
def _sgd(param, grad, *buffer, lr, momentum, nesterov, weight_decay):
    step = grad + weight_decay * param
    if not buffer:
        return (param - lr * step,)
    velocity = momentum * buffer[0] + step
    step = step + momentum * velocity if nesterov else velocity
    return param - lr * step, velocity


def _adam(param, grad, exp_avg, exp_avg_sq, *, lr, beta1, beta2, eps, weight_decay, decoupled,
          step):
    if not decoupled:
        grad = grad + weight_decay * param
    exp_avg = beta1 * exp_avg + (1 - beta1) * grad
    exp_avg_sq = beta2 * exp_avg_sq + (1 - beta2) * grad * grad
    denom = np.sqrt(exp_avg_sq / (1 - beta2 ** step)) + eps
    if decoupled:
        param = param * (1 - lr * weight_decay)
    return param - lr / (1 - beta1 ** step) * exp_avg / denom, exp_avg, exp_avg_sq


def _adagrad(param, grad, square_avg, *, lr, eps, weight_decay):
    grad = grad + weight_decay * param
    square_avg = square_avg + grad * grad
    return param - lr * grad / np.sqrt(square_avg + eps), square_avg


def _in_dtype_of(param, outs):
    return tuple(np.asarray(out).astype(param.dtype) for out in outs)


def _f64(*arrays):
    return [np.asarray(a, dtype=np.float64) for a in arrays]


@kernel("param, grad and an optional momentum buffer of one shape and float dtype; `lr`, "
        "`momentum`, `weight_decay` floats, `nesterov` a bool; returns (param,) or (param, "
        "buffer), updated")
def sgd_update(param, grad, *buffer, lr, momentum, nesterov, weight_decay):
    return _in_dtype_of(param, _sgd(*_f64(param, grad, *buffer), lr=lr, momentum=momentum,
                                    nesterov=nesterov, weight_decay=weight_decay))


@kernel("param, grad, exp_avg, exp_avg_sq of one shape and float dtype; `lr`, `beta1`, "
        "`beta2`, `eps`, `weight_decay` floats, `decoupled` a bool (AdamW), `step` the "
        "update's 1-based count; returns (param, exp_avg, exp_avg_sq), updated")
def adam_update(param, grad, exp_avg, exp_avg_sq, *, lr, beta1, beta2, eps, weight_decay,
                decoupled, step):
    return _in_dtype_of(param, _adam(*_f64(param, grad, exp_avg, exp_avg_sq), lr=lr,
                                     beta1=beta1, beta2=beta2, eps=eps,
                                     weight_decay=weight_decay, decoupled=decoupled, step=step))


@kernel("param, grad, square_avg of one shape and float dtype; `lr`, `eps`, `weight_decay` "
        "floats; returns (param, square_avg), updated")
def adagrad_update(param, grad, square_avg, *, lr, eps, weight_decay):
    return _in_dtype_of(param, _adagrad(*_f64(param, grad, square_avg), lr=lr, eps=eps,
                                        weight_decay=weight_decay))


# -- records: run the update, return what it stored (and the gradient it must not touch) -------
def _runner(op: str):
    def run(param, grad, *state, **attrs):
        update(op, (param, grad, *state), (param, *state), **attrs)
        return F.concat([F.flatten(t) for t in (param, *state, grad)])

    run.__name__ = op
    return run


def _stacked(fn):
    def reference(param, grad, *state, **attrs):
        outs = fn(param, grad, *state, **attrs)
        return np.concatenate([np.ravel(a) for a in (*outs, grad)])

    return reference


def _samples(n_state: int, attrs: list[tuple[str, dict]], positive_state: bool = False):
    def generate(rng: np.random.Generator, dtype: np.dtype) -> list[Sample]:
        def args(shape, layout="c"):
            state_domain = S.positive if positive_state else S.values
            return (Arg(S.values(rng, shape, dtype), layout, grad=False),
                    Arg(S.values(rng, shape, dtype), layout, grad=False),
                    *[Arg(state_domain(rng, shape, dtype), layout, grad=False)
                      for _ in range(n_state)])

        made = []
        for label, kwargs in attrs:
            made.append(Sample(f"{label}-matrix", args((3, 4)), kwargs, grad=False))
            made.append(Sample(f"{label}-0d", args(()), kwargs, grad=False))
        first_label, first_kwargs = attrs[0]
        made.append(Sample(f"{first_label}-empty", args((0, 3)), first_kwargs, grad=False))
        made.append(Sample(f"{first_label}-transposed", args((3, 2), "t"), first_kwargs,
                           grad=False))
        return made

    return generate


_SGD = dict(lr=0.1, momentum=0.0, nesterov=False, weight_decay=0.0)
_ADAM = dict(lr=0.01, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0, decoupled=False,
             step=3)
_TOL = {"float16": (2e-2, 2e-2)}

register(
    OpRecord("sgd_update", _runner("sgd_update"), _stacked(_sgd),
             _samples(0, [("plain", _SGD), ("decay", {**_SGD, "weight_decay": 0.01})]),
             _FLOATS, name="sgd_update", grad=False, tol=_TOL),
    OpRecord("sgd_update", _runner("sgd_update"), _stacked(_sgd),
             _samples(1, [("momentum", {**_SGD, "momentum": 0.9}),
                          ("nesterov", {**_SGD, "momentum": 0.9, "nesterov": True,
                                        "weight_decay": 0.01})]),
             _FLOATS, name="sgd_update_momentum", grad=False, tol=_TOL),
    OpRecord("adam_update", _runner("adam_update"), _stacked(_adam),
             _samples(2, [("adam", _ADAM), ("l2", {**_ADAM, "weight_decay": 0.1}),
                          ("adamw", {**_ADAM, "weight_decay": 0.1, "decoupled": True})],
                      positive_state=True),
             _FLOATS, grad=False, tol=_TOL),
    OpRecord("adagrad_update", _runner("adagrad_update"), _stacked(_adagrad),
             _samples(1, [("plain", dict(lr=0.1, eps=1e-10, weight_decay=0.0)),
                          ("decay", dict(lr=0.1, eps=1e-10, weight_decay=0.1))],
                      positive_state=True),
             _FLOATS, grad=False, tol=_TOL),
)
