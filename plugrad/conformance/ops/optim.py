"""Records of the optimizer update ops (``sgd_update``, ``adam_update``,
``adagrad_update``).

An update kernel returns the new parameter and state arrays; a backend whose arrays may be
written in place may return its inputs written, any other returns new arrays. Each record runs
the op through :func:`plugrad.core.dispatch.update` and returns every updated tensor followed by
the gradient, flattened into one vector: the values stored into the tensors are checked against
a float64 reference, and the gradient must come back unchanged. Adam's and Adagrad's last state
is their 0-d int32 step count, which the op increments.
"""
from __future__ import annotations

import numpy as np

from plugrad import functional as F
from plugrad.conformance import samples as S
from plugrad.conformance.table import Arg, OpRecord, Sample, register
from plugrad.core.dispatch import update
from plugrad.ops.optim import COUNT_DTYPE, adagrad_reference, adam_reference, sgd_reference

_FLOATS = ("float16", "float32", "float64")


# -- records: run the update, return what it stored (and the gradient it must not touch) -------
def _runner(op: str):
    def run(param, grad, *state, **attrs):
        update(op, (param, grad, *state), (param, *state), **attrs)
        return F.concat([F.flatten(t).astype(param.dtype) for t in (param, *state, grad)])

    run.__name__ = op
    return run


def _stacked(fn):
    def reference(param, grad, *state, **attrs):
        outs = fn(param, grad, *state, **attrs)
        return np.concatenate([np.ravel(a) for a in (*outs, grad)])

    return reference


def _samples(n_state: int, attrs: list[tuple[str, dict]], positive_state: bool = False,
             counted: bool = False):
    def generate(rng: np.random.Generator, dtype: np.dtype) -> list[Sample]:
        def args(shape, layout="c"):
            state_domain = S.positive if positive_state else S.values
            return (Arg(S.values(rng, shape, dtype), layout, grad=False),
                    Arg(S.values(rng, shape, dtype), layout, grad=False),
                    *[Arg(state_domain(rng, shape, dtype), layout, grad=False)
                      for _ in range(n_state)],
                    *[Arg(np.array(2, COUNT_DTYPE), "c", grad=False)] * counted)

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
_ADAM = dict(lr=0.01, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0, decoupled=False)
_ADAGRAD = dict(lr=0.1, lr_decay=0.0, eps=1e-10, weight_decay=0.0)
_TOL = {"float16": (2e-2, 2e-2)}

register(
    OpRecord("sgd_update", _runner("sgd_update"), _stacked(sgd_reference),
             _samples(0, [("plain", _SGD), ("decay", {**_SGD, "weight_decay": 0.01})]),
             _FLOATS, name="sgd_update", grad=False, tol=_TOL),
    OpRecord("sgd_update", _runner("sgd_update"), _stacked(sgd_reference),
             _samples(1, [("momentum", {**_SGD, "momentum": 0.9}),
                          ("nesterov", {**_SGD, "momentum": 0.9, "nesterov": True,
                                        "weight_decay": 0.01})]),
             _FLOATS, name="sgd_update_momentum", grad=False, tol=_TOL),
    OpRecord("adam_update", _runner("adam_update"), _stacked(adam_reference),
             _samples(2, [("adam", _ADAM), ("l2", {**_ADAM, "weight_decay": 0.1}),
                          ("adamw", {**_ADAM, "weight_decay": 0.1, "decoupled": True})],
                      positive_state=True, counted=True),
             _FLOATS, grad=False, tol=_TOL),
    OpRecord("adagrad_update", _runner("adagrad_update"), _stacked(adagrad_reference),
             _samples(1, [("plain", _ADAGRAD), ("decay", {**_ADAGRAD, "weight_decay": 0.1}),
                          ("lr_decay", {**_ADAGRAD, "lr_decay": 0.05})],
                      positive_state=True, counted=True),
             _FLOATS, grad=False, tol=_TOL),
)
