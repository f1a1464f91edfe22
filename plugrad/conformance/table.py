"""The op table: one record per (op, way of calling it): the inputs to try and the dtypes.

A record names an op of :data:`plugrad.core.registry.OPS`, the public function that reaches it,
a sample generator and the dtypes to try; the expected values come from the op's declared
float64 reference (a record that calls a public function doing more than the op brings its
own). The checks in :mod:`plugrad.conformance.checks` turn every record into forward, gradient
and fused-versus-decomposed tests. Modules that declare new ops add their records with
:func:`register`, and list their record module in :data:`plugrad.conformance.ops.MODULES`, so
the coverage test sees them.
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

__all__ = [
    "Arg", "Sample", "OpRecord", "register", "records", "records_for", "uncovered_ops",
    "declared_reference",
    "FLOATS", "SIGNED_INTS", "INTS", "NUMERIC", "ALL_DTYPES", "DEFAULT_TOLERANCE",
    "GRAD_TOLERANCE",
]

FLOATS = ("float16", "float32", "float64")
SIGNED_INTS = ("int8", "int16", "int32")
INTS = ("int8", "uint8", "int16", "int32")
NUMERIC = FLOATS + INTS
ALL_DTYPES = NUMERIC + ("bool",)

#: (rtol, atol) for comparing a result of this dtype with the float64 reference.
DEFAULT_TOLERANCE: dict[str, tuple[float, float]] = {
    "float16": (1e-2, 1e-2),
    "float32": (2e-5, 1e-6),
    "float64": (1e-10, 1e-12),
}
#: (rtol, atol) for gradients of this dtype against float64 central differences.
GRAD_TOLERANCE: dict[str, tuple[float, float]] = {
    "float32": (2e-3, 2e-4),
    "float64": (1e-6, 1e-7),
}

LAYOUTS = {"c": "contiguous", "t": "transposed", "s": "strided"}


@dataclass(frozen=True)
class Arg:
    """One tensor input: host values (already in the test dtype) and how to lay them out.

    ``layout`` is ``"c"`` (a fresh contiguous tensor), ``"t"`` (the result of a transpose, so a
    strided view on backends that return views) or ``"s"`` (every other element of a wider
    tensor). ``grad=False`` keeps a float input out of the gradient check.
    """

    value: np.ndarray
    layout: str = "c"
    grad: bool = True

    def __post_init__(self) -> None:
        if self.layout not in LAYOUTS:
            raise ValueError(f"Arg: layout must be one of {sorted(LAYOUTS)}, got {self.layout!r}")
        if self.layout == "t" and self.value.ndim < 2:
            raise ValueError(f"Arg: a transposed input needs 2 or more dimensions, got shape "
                             f"{self.value.shape}")
        if self.layout == "s" and (self.value.ndim < 1 or self.value.shape[-1] == 0):
            raise ValueError(f"Arg: a strided input needs a non-empty last axis, got shape "
                             f"{self.value.shape}")

    @property
    def differentiable(self) -> bool:
        return self.grad and self.value.dtype.kind == "f"

    def describe(self) -> str:
        return f"shape {self.value.shape} {self.value.dtype} {LAYOUTS[self.layout]}"


@dataclass(frozen=True)
class Sample:
    """One call of a record: positional inputs (:class:`Arg` or plain values) and keywords.

    ``label`` names the case in test ids (``0d``, ``empty``, ``broadcast``...). ``grad=False``
    keeps the sample out of gradient checks (a kink, a tie, an integer result).
    """

    label: str
    args: tuple[Any, ...] = ()
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    grad: bool = True

    def tensor_args(self) -> list[tuple[int, Arg]]:
        return [(i, a) for i, a in enumerate(self.args) if isinstance(a, Arg)]

    def dtypes_needed(self) -> set[str]:
        """Every dtype the sample creates: its inputs' and any ``dtype=`` keyword."""
        needed = {a.value.dtype.name for _, a in self.tensor_args()}
        if "dtype" in self.kwargs and self.kwargs["dtype"] is not None:
            needed.add(np.dtype(self.kwargs["dtype"]).name)
        return needed


SampleGenerator = Callable[[np.random.Generator, np.dtype], Iterable[Sample]]


@dataclass(frozen=True)
class OpRecord:
    """How to test one op through one public function.

    Args:
        op: the name in ``OPS`` this record exercises (its kernel must be called); an alias
            from :data:`plugrad.core.registry.ALIASES` stands for its op.
        fn: the public call, ``fn(*inputs, **sample.kwargs)`` with inputs as Tensors.
        reference: float64 NumPy version of ``fn`` with the same arguments (arrays for Tensors);
            ``None`` for the op's declared reference (then ``fn`` takes the op's arguments), or
            for ops checked by ``check`` instead (random numbers).
        samples: ``(rng, dtype) -> samples``; must cover 0-d, empty, broadcast and
            non-contiguous inputs where the op allows them.
        dtypes: the dtypes to try; those the backend does not declare are left out.
        name: the record's id in test names; defaults to ``op``.
        grad: whether to check gradients against finite differences of ``reference``.
        out_dtype: ``(sample, dtype) -> dtype name`` of the result; defaults to ``dtype``.
        tol: per-dtype ``(rtol, atol)`` overrides of :data:`DEFAULT_TOLERANCE`.
        grad_tol: per-dtype ``(rtol, atol)`` overrides of :data:`GRAD_TOLERANCE`.
        check: ``(device, dtype) -> None``, a property check for ops without a reference.
    """

    op: str
    fn: Callable[..., Any]
    reference: Callable[..., Any] | None
    samples: SampleGenerator | None
    dtypes: Sequence[str]
    name: str = ""
    grad: bool = True
    out_dtype: Callable[[Sample, np.dtype], str] | None = None
    tol: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    grad_tol: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    check: Callable[[Any, np.dtype], None] | None = None

    def __post_init__(self) -> None:
        from plugrad.core.registry import ALIASES, OPS

        object.__setattr__(self, "op", ALIASES.get(self.op, self.op))  # one name per op
        if not self.name:
            object.__setattr__(self, "name", self.op)
        if self.reference is None and self.check is None:
            declared = OPS.get(self.op)
            if declared is None or declared.reference is None:
                raise ValueError(f"OpRecord {self.name!r}: op {self.op!r} declares no reference; "
                                 f"give the record a reference or a check")
            object.__setattr__(self, "reference", declared.reference)
        bad = [d for d in self.dtypes if d not in ALL_DTYPES]
        if bad:
            raise ValueError(f"OpRecord {self.name!r}: unknown dtypes {bad}; known: {ALL_DTYPES}")

    def require_reference(self) -> Callable[..., Any]:
        """``reference``; a ValueError for a record checked by its ``check`` instead."""
        if self.reference is None:
            raise ValueError(f"OpRecord {self.name!r}: no reference to compare with; the record "
                             f"is checked by its check function (check_property)")
        return self.reference

    def tolerance(self, dtype: str) -> tuple[float, float]:
        return self.tol.get(dtype, DEFAULT_TOLERANCE.get(dtype, (0.0, 0.0)))

    def grad_tolerance(self, dtype: str) -> tuple[float, float]:
        return self.grad_tol.get(dtype, GRAD_TOLERANCE.get(dtype, (1e-3, 1e-4)))

    def expected_dtype(self, sample: Sample, dtype: np.dtype) -> str:
        if self.out_dtype is None:
            return dtype.name
        return np.dtype(self.out_dtype(sample, dtype)).name

    def make_samples(self, dtype: str) -> list[Sample]:
        """The record's samples for ``dtype``, the same on every call (seeded by name)."""
        if self.samples is None:
            return []
        rng = np.random.default_rng(case_seed(self.name, dtype))
        made = list(self.samples(rng, np.dtype(dtype)))
        labels = [s.label for s in made]
        if len(set(labels)) != len(labels):
            raise ValueError(f"OpRecord {self.name!r}: sample labels repeat for {dtype}: {labels}")
        return made


def declared_reference(op: str) -> Callable[..., Any]:
    """The float64 reference ``op`` declares in :mod:`plugrad.ops`; a ValueError for an op
    without one (random ops, checked by their statistics)."""
    from plugrad.core.registry import OPS

    reference = OPS[op].reference
    if reference is None:
        raise ValueError(f"conformance: op {op!r} declares no float64 reference; expected one "
                         f"of the ops that do (random ops are checked by their statistics)")
    return reference


def case_seed(*parts: str) -> int:
    """A stable seed from names, so a failing case can be rebuilt from its id alone."""
    return zlib.crc32("/".join(parts).encode())


_records: dict[str, OpRecord] = {}


def register(*new: OpRecord) -> None:
    """Add records to the table (the extension point for modules that declare new ops)."""
    for record in new:
        if record.name in _records and _records[record.name] is not record:
            raise ValueError(f"conformance: record {record.name!r} is registered twice; give "
                             f"the second one another name=")
        _records[record.name] = record


def records() -> list[OpRecord]:
    """Every record, after importing the built-in record modules."""
    from plugrad.conformance import ops as builtin

    builtin.load()
    return list(_records.values())


def records_for(op: str) -> list[OpRecord]:
    return [r for r in records() if r.op == op]


def uncovered_ops() -> list[str]:
    """Ops declared in ``OPS`` that no record exercises."""
    from plugrad.core.registry import OPS

    covered = {r.op for r in records()}
    return sorted(set(OPS) - covered)
