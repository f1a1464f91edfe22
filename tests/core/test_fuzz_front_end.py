"""Property-based fuzz of the functional front end (Hypothesis).

Two properties, over every public function of ``plugrad.functional`` (and ``F.nn``):

* with inputs drawn from an op's conformance samples (random seeds, so random values, shapes
  including 0-d and empty, layouts and dtypes), the result matches the float64 reference;
* with arbitrary arguments (random shapes and dtypes, out-of-range ints, nan and inf, None,
  strings, ragged lists), a call returns tensors or raises TypeError, ValueError or IndexError
  (or MemoryError, for a size too big to allocate) whose message names the function; nothing
  else, and never a hang.

The CI profile keeps this under a minute; ``PLUGRAD_FUZZ_PROFILE=long`` runs the long one.
"""
from __future__ import annotations

import inspect
import os
import signal
from contextlib import contextmanager

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import plugrad.functional as F
from plugrad import Tensor
from plugrad.conformance.checks import compare, materialize, reference_inputs
from plugrad.conformance.table import records
from plugrad.core.device import get_device

settings.register_profile("plugrad-ci", max_examples=400, deadline=None, derandomize=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("plugrad-long", max_examples=20000, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
PROFILE = settings.get_profile(
    "plugrad-long" if os.environ.get("PLUGRAD_FUZZ_PROFILE") == "long" else "plugrad-ci")
HANG_SECONDS = 20
ALLOWED = (TypeError, ValueError, IndexError, MemoryError)

RECORDS = sorted((r for r in records() if r.reference is not None and r.samples is not None),
                 key=lambda r: r.name)
CPU = get_device("cpux")


def _public_functions() -> dict[str, object]:
    found = {}
    for module in (F, F.nn):
        for name in module.__all__:
            value = getattr(module, name)
            if callable(value) and not inspect.ismodule(value) and not inspect.isclass(value):
                found.setdefault(name, value)
    return dict(sorted(found.items()))


FUNCTIONS = _public_functions()


@contextmanager
def _no_hang(what: str):
    """Fail instead of hanging: SIGALRM interrupts Python code running past the limit."""
    def expire(signum, frame):
        raise TimeoutError(f"{what} ran for more than {HANG_SECONDS} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(HANG_SECONDS)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


# -- property 1: the float64 reference ---------------------------------------------------------
@PROFILE
@given(data=st.data())
def test_results_match_the_float64_reference(data):
    record = data.draw(st.sampled_from(RECORDS), label="record")
    dtypes = [d for d in record.dtypes if d in CPU.type.dtypes]
    dtype = data.draw(st.sampled_from(dtypes), label="dtype")
    seed = data.draw(st.integers(0, 2**32 - 1), label="seed")
    samples = list(record.samples(np.random.default_rng(seed), np.dtype(dtype)))
    sample = data.draw(st.sampled_from(samples), label="sample")
    inputs = [materialize(a, CPU) if hasattr(a, "layout") else a for a in sample.args]
    with _no_hang(record.name):
        out = record.fn(*inputs, **sample.kwargs)
    with np.errstate(all="ignore"):
        expected = np.asarray(record.reference(*reference_inputs(sample), **sample.kwargs))
    out_dtype = record.expected_dtype(sample, np.dtype(dtype))
    assert tuple(out.shape) == expected.shape, f"{record.name}: shape"
    assert np.dtype(out.dtype).name == out_dtype, f"{record.name}: dtype"
    compare(record.name, "output", out.numpy(), expected, out_dtype, record.tolerance(out_dtype))


# -- property 2: arbitrary arguments -----------------------------------------------------------
DTYPES = ("float32", "float16", "int32", "int8", "uint8", "bool")
SPECIAL_FLOATS = (0.0, -0.5, 3.7, 1e30, float("nan"), float("inf"), -float("inf"))


@st.composite
def tensors(draw) -> Tensor:
    shape = tuple(draw(st.lists(st.integers(0, 4), max_size=4)))
    dtype = draw(st.sampled_from(DTYPES))
    size = int(np.prod(shape))
    if dtype == "bool":
        values = draw(st.lists(st.booleans(), min_size=size, max_size=size))
    elif dtype.startswith("float"):
        values = draw(st.lists(st.one_of(st.floats(-10, 10, width=16),
                                         st.sampled_from(SPECIAL_FLOATS[1:])),
                               min_size=size, max_size=size))
    else:
        info = np.iinfo(dtype)
        values = draw(st.lists(st.integers(max(info.min, -3), min(info.max, 12)), min_size=size,
                               max_size=size))
    with np.errstate(over="ignore"):  # 1e30 in float16 is meant to become inf
        host = np.array(values, dtype=dtype).reshape(shape)
    return Tensor(host, dtype=dtype)


def arguments() -> st.SearchStrategy:
    small_ints = st.integers(-3, 12)
    return st.one_of(
        tensors(),
        small_ints,
        st.sampled_from(SPECIAL_FLOATS),
        st.sampled_from([None, True, "x", "float32", "int32", 2**40]),
        st.lists(small_ints, max_size=4).map(tuple),
        st.lists(tensors(), min_size=1, max_size=3),
        st.lists(st.lists(small_ints, max_size=3), min_size=1, max_size=3),  # maybe ragged
    )


@PROFILE
@given(data=st.data())
def test_arbitrary_arguments_give_tensors_or_a_clear_error(data):
    name = data.draw(st.sampled_from(sorted(FUNCTIONS)), label="function")
    function = FUNCTIONS[name]
    parameters = [p for p in inspect.signature(function).parameters.values()
                  if p.name != "device" and p.kind is not p.VAR_KEYWORD]
    args, kwargs = [], {}
    for parameter in parameters:
        required = parameter.default is inspect.Parameter.empty
        if required or data.draw(st.booleans(), label=f"give {parameter.name}"):
            value = data.draw(arguments(), label=parameter.name)
            if parameter.kind is parameter.KEYWORD_ONLY or not required:
                kwargs[parameter.name] = value
            else:
                args.append(value)
    try:
        with _no_hang(name), np.errstate(all="ignore"):
            out = function(*args, **kwargs)
    except ALLOWED as exc:
        message = str(exc)
        assert _names_the_function(name, message), \
            f"{name} raised {type(exc).__name__} without naming itself: {message}"
        return
    results = out if isinstance(out, (list, tuple)) else [out]
    assert all(isinstance(r, Tensor) for r in results), f"{name} returned {type(out).__name__}"


# Public functions that are another name for, or a thin front of, a function whose name their
# errors carry (``F.equal`` is ``eq``; ``F.ones`` is ``full``).
ALIASES = {
    "equal": ("eq",), "not_equal": ("ne",), "greater": ("gt",), "greater_equal": ("ge",),
    "less": ("lt",), "less_equal": ("le",), "ones": ("full",), "zeros": ("full",),
    "ones_like": ("full",), "zeros_like": ("full",), "full_like": ("full",),
}


def _names_the_function(name: str, message: str) -> bool:
    return any(f"{candidate}" in message for candidate in (name,) + ALIASES.get(name, ()))


def test_the_fuzz_reaches_every_public_function():
    assert len(FUNCTIONS) > 80
    assert {"conv2d", "cross_entropy", "one_hot", "reshape", "setitem"} <= set(FUNCTIONS)
