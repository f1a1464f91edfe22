"""The op registry: every op declared once, and each device type's kernel table built once.

A *primitive* is an op every backend must implement. A *composite* op is defined by a
decomposition into other ops; a backend may override it with a fused kernel, and then the
composite's own vjp (if it has one) is used, otherwise gradients flow through the decomposition.
vjps are written with other ops, so backends never implement autograd.

Each declaration also carries the op's kernel signature, its shape and dtype rule (what the
front end checks, and what a tracer infers without running kernels) and one float64 NumPy
reference. The conformance contract, the kernel tables of docs/backends.md and
``plugrad info --op`` are generated from these declarations.
"""
from __future__ import annotations

import ast
import difflib
import logging
import weakref
from dataclasses import dataclass
from typing import Any, Callable, NamedTuple

import numpy as np

from plugrad.core.backend import DeviceType, Kernel

log = logging.getLogger(__name__)

__all__ = [
    "OpDef",
    "DeclaredOp",
    "OPS",
    "ALIASES",
    "Attr",
    "Signature",
    "Spec",
    "lookup",
    "primitive",
    "composite",
    "dispatch_table",
    "coverage",
    "missing_primitives",
    "dtype_tables",
]


class Spec(NamedTuple):
    """An array's abstract value: what a shape rule reads and returns."""

    shape: tuple[int, ...]
    dtype: Any  # a numpy.dtype


class Attr(NamedTuple):
    """One keyword attribute of a kernel: its name, type (as written) and default, if any."""

    name: str
    type: str
    default: str | None = None


@dataclass(frozen=True)
class Signature:
    """A kernel's parameters, parsed from Python syntax such as ``"x, *, axis: int"``.

    Inputs are arrays passed positionally (``*xs`` for any number; a default marks an optional
    one, as linear's bias); attributes are keyword-only, annotated with their type.
    """

    text: str
    inputs: tuple[str, ...]
    optional: tuple[str, ...]
    variadic: bool
    attrs: tuple[Attr, ...]

    @classmethod
    def parse(cls, text: str) -> Signature:
        try:
            args = ast.parse(f"def _({text}): pass").body[0].args  # type: ignore[attr-defined]
        except SyntaxError as exc:
            raise ValueError(f"signature {text!r} is not a Python parameter list: {exc}") from None
        inputs = tuple(a.arg for a in args.args)
        optional = inputs[len(inputs) - len(args.defaults):] if args.defaults else ()
        if args.vararg is not None:
            inputs += (args.vararg.arg,)
        missing = [a.arg for a in args.kwonlyargs if a.annotation is None]
        if missing:
            raise ValueError(f"signature {text!r}: attributes {missing} need a type annotation")
        attrs = tuple(Attr(a.arg, ast.unparse(a.annotation),
                           None if d is None else ast.unparse(d))
                      for a, d in zip(args.kwonlyargs, args.kw_defaults))
        return cls(text, inputs, optional, args.vararg is not None, attrs)


#: Public names that reach an op under another name: one table, used by info, docs and the
#: conformance suite, so each op keeps one name everywhere else.
ALIASES: dict[str, str] = {
    "equal": "eq", "not_equal": "ne", "less": "lt", "less_equal": "le", "greater": "gt",
    "greater_equal": "ge", "astype": "cast", "floor_divide": "floor_div", "concatenate": "concat",
    "cross_entropy": "softmax_cross_entropy",
}


@dataclass(frozen=True, eq=False)
class OpDef:
    """What the tape needs of an op: its name and how to differentiate it.

    ``vjp(ctx, g)`` returns one gradient (or ``None``) per input, computed with other ops;
    ``ctx`` holds the inputs, the output and the attributes of the forward call.
    ``decomposition(*inputs, **attrs)`` computes a composite op with other ops.
    ``keep_inputs`` (input positions; ``None`` for all) and ``keep_out`` say which arrays the vjp
    reads: the tape keeps only those, and the other inputs as their shape and dtype, so the
    activations a backward pass never reads are freed during the forward pass.
    An op outside the registry (a collective, whose arrays go through a communicator) is
    recorded with an OpDef of its own; every op in :data:`OPS` is a :class:`DeclaredOp`.
    """

    name: str
    primitive: bool
    vjp: Callable | None = None
    decomposition: Callable | None = None
    differentiable: bool = True
    doc: str = ""
    keep_inputs: tuple[int, ...] | None = None
    keep_out: bool = True


@dataclass(frozen=True, eq=False, kw_only=True)
class DeclaredOp(OpDef):
    """An op of the registry: an :class:`OpDef` with its kernel contract.

    ``signature`` is the kernel's, ``rule(*specs, **attrs)`` maps anything with ``.shape`` and
    ``.dtype`` (arrays, Tensors, :class:`Spec`) to the output :class:`Spec` or raises the op's
    TypeError/ValueError, and ``reference(*arrays, **attrs)`` computes the op in float64 NumPy
    (``None`` for random ops, checked by their statistics instead). ``doc`` says what the kernel
    returns.
    """

    signature: Signature
    rule: Callable[..., Spec]
    reference: Callable[..., Any] | None

    @property
    def aliases(self) -> list[str]:
        return sorted(alias for alias, name in ALIASES.items() if name == self.name)


OPS: dict[str, DeclaredOp] = {}
#: Composite ops with no vjp of their own: while recording they run their decomposition even
#: where a backend has a fused kernel, so gradients still flow. Kept as a set for dispatch.
DECOMPOSE_WHEN_RECORDING: set[str] = set()


def _register(op: DeclaredOp) -> DeclaredOp:
    if op.name in OPS:
        raise ValueError(f"op {op.name!r} is declared twice")
    OPS[op.name] = op
    return op


def lookup(name: str) -> DeclaredOp:
    """The op called ``name`` or one of its :data:`ALIASES`; a KeyError suggests close names."""
    op = OPS.get(ALIASES.get(name, name))
    if op is None:
        close = difflib.get_close_matches(name, list(OPS) + list(ALIASES), n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else "; 'plugrad info' lists them"
        raise KeyError(f"no op is called {name!r}{hint}")
    return op


def primitive(name: str, signature: str, *, rule: Callable[..., Spec],
              reference: Callable[..., Any] | None, vjp: Callable | None = None,
              differentiable: bool = True, doc: str = "",
              keep_inputs: tuple[int, ...] | None = None, keep_out: bool = True) -> DeclaredOp:
    """Declare a primitive op; ``differentiable=False`` ops pass no gradient (comparisons...)."""
    return _register(DeclaredOp(name, True, vjp, None, differentiable and vjp is not None, doc,
                                keep_inputs, keep_out, signature=Signature.parse(signature),
                                rule=rule, reference=reference))


def composite(name: str, signature: str, *, rule: Callable[..., Spec],
              reference: Callable[..., Any] | None, decomposition: Callable,
              vjp: Callable | None = None, doc: str = "",
              keep_inputs: tuple[int, ...] | None = None, keep_out: bool = True) -> DeclaredOp:
    """Declare a composite op with its decomposition (and optionally a vjp for fused kernels)."""
    if vjp is None:
        DECOMPOSE_WHEN_RECORDING.add(name)
    return _register(DeclaredOp(name, False, vjp, decomposition, True, doc, keep_inputs,
                                keep_out, signature=Signature.parse(signature), rule=rule,
                                reference=reference))


# Keyed by the DeviceType itself, weakly: an id() key outlived its device type, and a new one
# created at the same address (plugins re-registered in tests) got the old type's kernels.
_tables: weakref.WeakKeyDictionary[DeviceType, dict[str, Kernel]] = weakref.WeakKeyDictionary()


def _owner(device_type: DeviceType) -> str:
    source = f" ({device_type.source})" if device_type.source else ""
    return f"backend {device_type.backend!r}{source}, device type {device_type.name!r}"


def _load_checked(device_type: DeviceType) -> dict[str, Kernel]:
    """The plugin's kernel table, with load failures and non-callables attributed to it."""
    try:
        kernels = device_type.load_kernels()
    except Exception as exc:
        raise RuntimeError(f"{_owner(device_type)}: loading its kernel table failed: "
                           f"{type(exc).__name__}: {exc}; the plugin's kernels callable must "
                           f"return a dict of op name -> kernel") from exc
    bad = [f"{name!r} ({type(kernel).__name__})" for name, kernel in kernels.items()
           if not isinstance(name, str) or not callable(kernel)]
    if bad:
        raise TypeError(f"{_owner(device_type)}: kernels must be callables under op names; "
                        f"got {', '.join(bad)}")
    unknown = sorted(set(kernels) - set(OPS))
    if unknown:
        hints = []
        for name in unknown:
            close = difflib.get_close_matches(name, list(OPS), n=1)
            hints.append(f"{name!r} (did you mean {close[0]!r}?)" if close else repr(name))
        log.warning("%s: kernels for ops plugrad does not know are ignored: %s; "
                    "'plugrad info' lists the ops", _owner(device_type), ", ".join(hints))
    return kernels


def dispatch_table(device_type: DeviceType) -> dict[str, Kernel]:
    """The device type's op -> kernel dict, loaded once; composites without a kernel are absent."""
    table = _tables.get(device_type)
    if table is None:
        kernels = _load_checked(device_type)
        table = {name: kernel for name, kernel in kernels.items() if name in OPS}
        _tables[device_type] = table
    return table


_dtype_tables: weakref.WeakKeyDictionary[DeviceType, tuple[dict, dict]] = \
    weakref.WeakKeyDictionary()


def dtype_tables(device_type: DeviceType) -> tuple[dict[Any, np.dtype], dict[np.dtype, Any]]:
    """``(native dtype -> plugrad dtype, plugrad dtype -> native dtype)``, built once."""
    tables = _dtype_tables.get(device_type)
    if tables is None:
        to_native = device_type.dtype_table()
        tables = _dtype_tables[device_type] = ({v: k for k, v in to_native.items()}, to_native)
    return tables


def missing_primitives(device_type: DeviceType) -> list[str]:
    """Primitives the device type lacks: a backend must implement all of them."""
    table = dispatch_table(device_type)
    return sorted(name for name, op in OPS.items() if op.primitive and name not in table)


def coverage(device_type: DeviceType) -> dict[str, list[str]]:
    """Which ops run natively, which through a decomposition, and which primitives are missing."""
    table = dispatch_table(device_type)
    native = sorted(name for name in OPS if name in table)
    decomposed = sorted(name for name, op in OPS.items() if not op.primitive and name not in table)
    return {"native": native, "decomposed": decomposed, "missing": missing_primitives(device_type)}
