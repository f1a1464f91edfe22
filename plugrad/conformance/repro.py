"""Short, copy-pasteable reproductions of a failing case, and a helper that reruns one.

Every failure report ends with a block naming the op, shapes, dtypes, layouts, attributes and
device, the command that reruns just that test, and a one-line Python call that rebuilds the
inputs and prints the backend's result next to the reference.
"""
from __future__ import annotations

import json
import shlex
from typing import Any

import numpy as np

from plugrad.conformance.checks import Case, materialize, reference_inputs
from plugrad.conformance.table import Arg, OpRecord, Sample, records

__all__ = ["describe", "find_case", "show"]

_TEST_OF_CHECK = {
    "forward": "test_forward", "gradient": "test_gradient", "fused-forward": "test_fused_forward",
    "fused-gradient": "test_fused_gradient", "property": "test_property",
}


def _value(v: Any) -> str:
    if isinstance(v, np.ndarray):
        return f"np.array({v.tolist()!r}, dtype={v.dtype.name!r})"
    if isinstance(v, tuple):
        inner = ", ".join(_value(x) for x in v)
        return f"({inner},)" if len(v) == 1 else f"({inner})"
    return repr(v)


def describe(case: Case, backend: str, device: str, extra_args: str = "",
             plugins: list[str] | None = None) -> str:
    """The repro block for ``case`` on ``device`` of ``backend``.

    ``plugins`` are plugin modules registered by import path (``--plugin``) for the run.
    """
    record = case.record
    lines = [f"op:      {record.op} (record {record.name!r}, check {case.check})",
             f"device:  {device} (backend {backend!r})"]
    if case.sample is not None:
        sample = case.sample
        inputs = [f"x{i}: {a.describe()}" if isinstance(a, Arg) else f"x{i}: {_value(a)}"
                  for i, a in enumerate(sample.args)]
        lines.append(f"inputs:  {'; '.join(inputs) or 'none'}")
        attrs = ", ".join(f"{k}={_value(v)}" for k, v in sample.kwargs.items())
        lines.append(f"attrs:   {attrs or 'none'}")
    else:
        lines.append(f"dtype:   {case.dtype}")
    test = f"{_TEST_OF_CHECK[case.check]}[{case.id}]"
    command = f"python -m plugrad.conformance --backend {backend} --device {device}"
    lines.append(f"rerun:   {command}{extra_args} -k {shlex.quote(test)}")
    if case.sample is not None:
        extra_plugins = f", plugins={json.dumps(plugins)}" if plugins else ""
        call = (f"from plugrad.conformance import repro; repro.show({json.dumps(case.check)}, "
                f"{json.dumps(case.id)}, device={json.dumps(device)}{extra_plugins})")
        lines.append(f"inspect: python -c {shlex.quote(call)}")
    return "\n".join(lines)


def find_case(check: str, case_id: str) -> Case:
    """Rebuild a case from its check and id (``add-float32-broadcast``); samples are seeded."""
    for record in sorted(records(), key=lambda r: -len(r.name)):
        prefix = f"{record.name}-"
        if not case_id.startswith(prefix):
            continue
        dtype, _, label = case_id[len(prefix):].partition("-")
        for sample in record.make_samples(dtype):
            if sample.label == label:
                return Case(record, dtype, sample, check)
    raise KeyError(f"no conformance case {case_id!r}; ids read <record>-<dtype>-<sample>")


def _run(record: OpRecord, sample: Sample, device: str) -> tuple[list[Any], Any]:
    from plugrad.core.device import get_device

    target = get_device(device)
    inputs = [materialize(a, target) if isinstance(a, Arg) else a for a in sample.args]
    return inputs, record.fn(*inputs, **sample.kwargs)


def show(check: str, case_id: str, device: str, plugins: list[str] | None = None) -> None:
    """Print the inputs, the backend's output and the reference for one case."""
    from plugrad.conformance.target import load_plugin_modules
    from plugrad.core.device import using_device

    load_plugin_modules(list(plugins or []))
    case = find_case(check, case_id)
    record, sample = case.record, case.require_sample()
    np.set_printoptions(precision=6, suppress=True)
    with using_device(device):
        inputs, out = _run(record, sample, device)
        for i, x in enumerate(inputs):
            print(f"x{i} =", x.numpy() if hasattr(x, "numpy") else x, sep="\n")
        print(f"{record.op} on {device} =", out.numpy(), sep="\n")
    expected = record.require_reference()(*reference_inputs(sample), **sample.kwargs)
    print("float64 reference =", np.asarray(expected), sep="\n")
